"""Module detection: one entry point, one registry of methods, one result type.

``detect(graph, method=..., seed=...)`` looks the method up in :data:`DETECTORS` and
returns a :class:`~modgraph.partition.Partition` (a :class:`~modgraph.partition.Hierarchy`
for nested methods). Each method lives in its own module and registers itself with
:func:`register`. ``method_options(method)`` lists a method's options (its keyword-only
parameters); ``detect`` refuses any other key with a message listing them.
"""
from __future__ import annotations

from modgraph.detect._registry import DETECTORS, check_options, describe_options, detect, method_options, register

__all__ = ["detect", "register", "DETECTORS", "method_options", "check_options", "describe_options"]

from modgraph.detect import modularity as _modularity  # noqa: E402,F401  (registers "modularity")
from modgraph.detect import sbm as _sbm  # noqa: E402,F401  (registers "sbm", "nested-sbm")
from modgraph.detect import sculpting as _sculpting  # noqa: E402,F401  (registers "sculpting")
from modgraph.detect import spectral as _spectral  # noqa: E402,F401  (registers "spectral")
from modgraph.detect import subfunctions as _subfunctions  # noqa: E402,F401  (registers "subfunctions")
