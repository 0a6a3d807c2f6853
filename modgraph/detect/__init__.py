"""Module detection: one entry point, one registry of methods, one result type.

``detect(graph, method=..., seed=...)`` looks the method up in :data:`DETECTORS` and
returns a :class:`~modgraph.partition.Partition` (a :class:`~modgraph.partition.Hierarchy`
for nested methods). Each method lives in its own module and registers itself with
:func:`register`.
"""
from __future__ import annotations

from modgraph.detect._registry import DETECTORS, detect, register

__all__ = ["detect", "register", "DETECTORS"]

from modgraph.detect import modularity as _modularity  # noqa: E402,F401  (registers "modularity")
from modgraph.detect import sbm as _sbm  # noqa: E402,F401  (registers "sbm", "nested-sbm")
from modgraph.detect import sculpting as _sculpting  # noqa: E402,F401  (registers "sculpting")
from modgraph.detect import spectral as _spectral  # noqa: E402,F401  (registers "spectral")
from modgraph.detect import subfunctions as _subfunctions  # noqa: E402,F401  (registers "subfunctions")
