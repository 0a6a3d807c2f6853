"""The registry of detection methods: :data:`DETECTORS`, :func:`register` and :func:`detect`.

Kept apart from the package ``__init__`` so that each method module imports its decorator
from here while the ``__init__`` imports the method modules: imports point one way.

Examples
--------
>>> from modgraph.planted import disjoint_mlps
>>> from modgraph.graph import build_unit_graph
>>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
>>> detect(build_unit_graph(net), method="subfunctions", seed=0).n_modules
2
"""
from __future__ import annotations

from typing import Callable

from modgraph.graph import UnitGraph
from modgraph.partition import Partition

__all__ = ["detect", "register", "DETECTORS"]

#: method name -> function(graph, *, seed, **options) -> Partition
DETECTORS: dict[str, Callable[..., Partition]] = {}


def register(name: str):
    """Decorator adding a detector to :data:`DETECTORS` under ``name``."""
    def deco(fn):
        old = DETECTORS.get(name)
        # the same function defined again (a module executed twice, as pytest's doctest import
        # can do) replaces itself; a different function under a taken name is an error
        if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"detector {name!r} is already registered")
        DETECTORS[name] = fn
        return fn
    return deco


def detect(graph: UnitGraph, *, method: str = "sculpting", seed: int = 1, **options) -> Partition:
    """Find the modules of ``graph`` with ``method``; same seed, same labels."""
    try:
        run = DETECTORS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(sorted(DETECTORS))}") from None
    return run(graph, seed=seed, **options)
