"""Directed paths through a layered unit graph: which units they join, and how many there are.

The path algebra behind ``sculpting`` and ``subfunctions`` (:mod:`modgraph.detect.sculpting`,
:mod:`modgraph.detect.subfunctions`): sparse boolean and integer products of the layers'
adjacency blocks, no graph-tool and no decisions.

On a DAG view the layers are group depths and an edge may skip layers (a residual Add, a
concat of tensors of different depths). :func:`layer_products` then accumulates over the
layers in order: what reaches layer ``m`` from layer ``l`` is the sum over every layer
``k`` (``l <= k < m``) with edges into ``m`` of (what reaches ``k``) @ (block ``k -> m``), so
every directed path is followed, through skip edges too, and counted once. On a chain only
``k = m - 1`` has edges and the products are exactly the chain's ``cur @ block``, operation
for operation (bit-identical results).
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import scipy.sparse as sp

from modgraph.errors import ModgraphError
from modgraph.graph import UnitGraph

__all__ = ["closure_edges", "input_path_counts", "layer_products"]


def layer_products(g: UnitGraph, l: int, start, block: Callable[[int, int], sp.spmatrix],
                   post: Callable, operand: Callable = lambda p: p, check: Callable | None = None
                   ) -> Iterator[tuple[int, sp.spmatrix]]:
    """Yield ``(m, P_m)`` for the layers ``m > l`` reached from layer ``l``, in order.

    ``P_l = start`` (rows: units of layer ``l``); ``P_m = post(Σ_k operand(P_k) @ block(k, m))``
    over the layers ``k`` in ``l .. m-1`` with edges into ``m`` that were reached (``block(k, m)``
    is (units of k, units of m)). A layer whose product is empty is not yielded and not used
    again. ``check(m, [(P_k, block(k, m)), ...])``, when given, runs before the products.
    """
    links = g.layer_links()
    reached = {l: start}
    for m in range(l + 1, g.n_layers):
        feeding = [k for k in links.get(m, ()) if k in reached]
        if not feeding:
            continue
        if check is not None:
            check(m, [(reached[k], block(k, m)) for k in feeding])
        acc = reached[feeding[0]] @ block(feeding[0], m)
        for k in feeding[1:]:
            acc = acc + reached[k] @ block(k, m)
        p = post(acc)
        if p.nnz == 0:
            continue
        reached[m] = operand(p)
        yield m, p


def _blocks(g: UnitGraph, convert: Callable) -> Callable[[int, int], sp.spmatrix]:
    cache: dict = {}

    def block(k: int, m: int):
        if (k, m) not in cache:
            cache[k, m] = convert(g.layer_block(k, weighted=False, to=m).T.tocsr())
        return cache[k, m]
    return block


def closure_edges(g: UnitGraph) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of every pair of units joined by a directed path of length >= 1 (src upstream).

    >>> from modgraph.network import Layer, LayeredNetwork
    >>> from modgraph.graph import build_unit_graph
    >>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0, 1.0]])), Layer.from_dense(np.array([[1.0]]))])
    >>> s, d = closure_edges(build_unit_graph(net))
    >>> sorted(zip(s.tolist(), d.tolist()))
    [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    """
    block = _blocks(g, lambda b: b.astype(bool))
    src, dst = [], []
    for l in range(g.n_layers - 1):
        here = g.units_in_layer(l)
        start = sp.identity(here.size, format="csr", dtype=bool)
        for m, coo in layer_products(g, l, start, block, lambda a: a.astype(bool).tocoo(), lambda p: p.tocsr()):
            src.append(here[coo.row])                               # coo: (units of l, units of m)
            dst.append(g.units_in_layer(m)[coo.col])
    if not src:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)


def _ones(b):
    b = b.astype(np.int64)
    b.data[:] = 1
    return b


def _pruned(a):
    a = a.tocsr()
    a.eliminate_zeros()
    return a


def _no_overflow(m: int, terms) -> None:
    """Refuse a product whose path counts could pass 2**62: a bound from each term's largest count
    and the block's largest in-degree (sound, so a silent int64 wrap-around cannot happen)."""
    bound = sum(float(p.data.max(initial=0)) * float(np.asarray(b.sum(axis=0)).max(initial=0)) for p, b in terms)
    if bound > 2.0 ** 62:
        raise ModgraphError(f"the input–unit path counts into layer {m} may exceed 2**62 (bound {bound:.3g}): "
                            "too many directed paths for subfunctions' path-count graph; prune the network "
                            "or use another method")


def input_path_counts(g: UnitGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input position, unit id, number of directed paths) for every input–unit pair joined by a path.

    Paths through skip edges count as paths of their own (an Add's input reached directly and
    through the branch it skips is reached twice). Counts are int64; a graph whose counts could
    pass 2**62 is refused (:class:`~modgraph.errors.ModgraphError`) rather than wrapped around.

    >>> from modgraph.network import Layer, LayeredNetwork
    >>> from modgraph.graph import build_unit_graph
    >>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0], [1.0]])), Layer.from_dense(np.array([[1.0, 1.0]]))])
    >>> i, u, c = input_path_counts(build_unit_graph(net))     # one input, two hidden units, one output
    >>> sorted(zip(i.tolist(), u.tolist(), c.tolist()))
    [(0, 1, 1), (0, 2, 1), (0, 3, 2)]
    """
    ins = g.units_in_layer(0)
    block = _blocks(g, _ones)
    start = sp.identity(ins.size, format="csr", dtype=np.int64)
    rows, cols, counts = [], [], []
    for m, cur in layer_products(g, 0, start, block, _pruned, check=_no_overflow):
        coo = cur.tocoo()
        rows.append(coo.row)
        cols.append(g.units_in_layer(m)[coo.col])
        counts.append(coo.data)
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy(), z.copy()
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.concatenate(counts).astype(np.int64))
