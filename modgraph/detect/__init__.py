"""Module detection: one entry point, one registry of methods, one result type.

``detect(graph, method=..., seed=...)`` looks the method up in :data:`DETECTORS` and
returns a :class:`~modgraph.partition.Partition` (a :class:`~modgraph.partition.Hierarchy`
for nested methods). Each method lives in its own module and registers itself with
:func:`register`.
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

from modgraph.detect import modularity as _modularity  # noqa: E402,F401  (registers "modularity")
from modgraph.detect import sbm as _sbm  # noqa: E402,F401  (registers "sbm", "nested-sbm")
from modgraph.detect import sculpting as _sculpting  # noqa: E402,F401  (registers "sculpting")
from modgraph.detect import spectral as _spectral  # noqa: E402,F401  (registers "spectral")
from modgraph.detect import subfunctions as _subfunctions  # noqa: E402,F401  (registers "subfunctions")
