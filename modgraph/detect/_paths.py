"""Directed paths through a layered unit graph: which units they join, and how many there are.

The path algebra behind ``subfunctions`` (:mod:`modgraph.detect.subfunctions`): sparse boolean
and integer products of the layers' adjacency blocks, no graph-tool and no decisions.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from modgraph.graph import UnitGraph

__all__ = ["closure_edges", "input_path_counts"]


def closure_edges(g: UnitGraph) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of every pair of units joined by a directed path of length >= 1 (src upstream).

    >>> from modgraph.network import Layer, LayeredNetwork
    >>> from modgraph.graph import build_unit_graph
    >>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0, 1.0]])), Layer.from_dense(np.array([[1.0]]))])
    >>> s, d = closure_edges(build_unit_graph(net))
    >>> sorted(zip(s.tolist(), d.tolist()))
    [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    """
    steps = [g.layer_block(m, weighted=False).T.tocsr().astype(bool) for m in range(g.n_layers - 1)]
    src, dst = [], []
    for l in range(g.n_layers - 1):
        here = g.units_in_layer(l)
        cur = sp.identity(here.size, format="csr", dtype=bool)
        for m in range(l, g.n_layers - 1):
            cur = (cur @ steps[m]).astype(bool).tocoo()             # (units of l, units of m+1)
            if cur.nnz == 0:
                break
            src.append(here[cur.row])
            dst.append(g.units_in_layer(m + 1)[cur.col])
            cur = cur.tocsr()
    if not src:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)


def input_path_counts(g: UnitGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input position, unit id, number of directed paths) for every input–unit pair joined by a path.

    >>> from modgraph.network import Layer, LayeredNetwork
    >>> from modgraph.graph import build_unit_graph
    >>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0], [1.0]])), Layer.from_dense(np.array([[1.0, 1.0]]))])
    >>> i, u, c = input_path_counts(build_unit_graph(net))     # one input, two hidden units, one output
    >>> sorted(zip(i.tolist(), u.tolist(), c.tolist()))
    [(0, 1, 1), (0, 2, 1), (0, 3, 2)]
    """
    ins = g.units_in_layer(0)
    cur = sp.identity(ins.size, format="csr", dtype=np.int64)
    rows, cols, counts = [], [], []
    for m in range(g.n_layers - 1):
        step = g.layer_block(m, weighted=False).T.tocsr().astype(np.int64)
        step.data[:] = 1
        cur = (cur @ step).tocsr()
        cur.eliminate_zeros()
        if cur.nnz == 0:
            break
        coo = cur.tocoo()
        rows.append(coo.row)
        cols.append(g.units_in_layer(m + 1)[coo.col])
        counts.append(coo.data)
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy(), z.copy()
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.concatenate(counts).astype(np.int64))
