"""Helpers every detector shares: input checks, condensation, labels back onto the given graph."""
from __future__ import annotations

import numpy as np

from modgraph.graph import UnitGraph, condense as _condense

__all__ = ["prepare", "spread", "check_seed"]


def check_seed(seed) -> int:
    """The seed as an int >= 0 (a clear error otherwise)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return int(seed)


def prepare(graph: UnitGraph, *, condense: bool) -> UnitGraph:
    """Check ``graph`` and return the graph a method works on (condensed when asked).

    Raises ``ValueError`` for a graph without units or without edges, before or after
    condensation.
    """
    if not isinstance(graph, UnitGraph):
        raise TypeError(f"expected a UnitGraph, got {type(graph).__name__}")
    if graph.n_units == 0:
        raise ValueError("the graph has no units: nothing to detect modules in")
    if graph.n_edges == 0:
        raise ValueError(f"the graph has {graph.n_units} units but no edges: nothing to detect modules in")
    work = _condense(graph) if condense else graph
    if work.n_edges == 0:
        raise ValueError("no edge is left after condensation (no path from an input reaches an output)")
    return work


def spread(graph: UnitGraph, work: UnitGraph, labels) -> np.ndarray:
    """Labels of ``work``'s units (a subgraph of ``graph``) over ``graph``'s units; −1 elsewhere."""
    labels = np.asarray(labels, dtype=np.int64)
    if work is graph:
        return labels.copy()
    ids = graph.original_id
    order = np.argsort(ids, kind="stable")
    pos = order[np.searchsorted(ids[order], work.original_id)]
    out = np.full(graph.n_units, -1, dtype=np.int64)
    out[pos] = labels
    return out
