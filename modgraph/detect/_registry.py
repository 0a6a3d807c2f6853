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
>>> method_options("subfunctions")
{'n_restarts': (<class 'int'>, 5)}
>>> check_options("subfunctions", {"restarts": 3})
Traceback (most recent call last):
...
ValueError: method 'subfunctions' has no option 'restarts'; its options are: n_restarts (int, default 5)
"""
from __future__ import annotations

import inspect
import typing
from typing import Callable

from modgraph.graph import UnitGraph
from modgraph.partition import Partition

__all__ = ["detect", "register", "DETECTORS", "method_options", "check_options", "describe_options"]

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


def _detector(method: str) -> Callable[..., Partition]:
    try:
        return DETECTORS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(sorted(DETECTORS))}") from None


def method_options(method: str) -> dict[str, tuple]:
    """The options of ``method``: {name: (type, default)}, read from the detector's keyword-only
    parameters (``seed`` excepted), so the signature is the one declaration of them."""
    run = _detector(method)
    hints = typing.get_type_hints(run)
    return {name: (hints.get(name, object), par.default)
            for name, par in inspect.signature(run).parameters.items()
            if par.kind is inspect.Parameter.KEYWORD_ONLY and name != "seed"}


def _type_name(kind) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("NoneType", "None")


def describe_options(method: str) -> str:
    """``"key (type, default value), ..."`` for messages and ``--help``."""
    return ", ".join(f"{k} ({_type_name(t)}, default {d!r})" for k, (t, d) in method_options(method).items()) or "none"


def _accepts(kind, value) -> bool:
    allowed = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, type(int | None)) else (kind,)
    for a in allowed:
        a = type(None) if a is None else a
        if a is object or (a is float and isinstance(value, int) and not isinstance(value, bool)):
            return True
        if a is int and isinstance(value, bool):
            continue
        if isinstance(a, type) and isinstance(value, a):
            return True
    return False


def check_options(method: str, options: dict) -> None:
    """Raise ``ValueError`` naming the valid keys when ``options`` has a key ``method`` does not
    take, or the expected type when a value has another type."""
    known = method_options(method)
    for key, value in options.items():
        if key not in known:
            raise ValueError(f"method {method!r} has no option {key!r}; its options are: {describe_options(method)}")
        kind = known[key][0]
        if not _accepts(kind, value):
            raise ValueError(f"method {method!r}, option {key!r}: expected {_type_name(kind)}, found {value!r}")


def detect(graph: UnitGraph, *, method: str = "sculpting", seed: int = 1, **options) -> Partition:
    """Find the modules of ``graph`` with ``method``; same seed, same labels.

    Options the method does not take, or of the wrong type, raise ``ValueError`` listing the valid ones."""
    run = _detector(method)
    check_options(method, options)
    return run(graph, seed=seed, **options)
