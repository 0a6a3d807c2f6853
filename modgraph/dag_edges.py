"""Typed unit edges of a :class:`~modgraph.dag.DagNetwork`, vectorised per unit group.

Units are numbered globally in group order (``net.unit_offsets[g] + k`` is unit ``k`` of group
``g``). Every weighted group gives edges from the units feeding its input channels; every merge
group gives one edge per input channel (``identity`` for Add/Sum, ``gate`` for Mul). Biases are
never edges.

Edge weight under ``edge_norm`` (a reduction of the kernel slice K[o, j], kh x kw for a conv,
H x W for a dense unit reading a flattened channel, one entry for a plain dense weight):

- ``l1`` (default): entrywise sum of |K|;
- ``l2``: Frobenius norm of K;
- ``filan``: numpy's *matrix* 1-norm of the slice, max over columns of the column sums of |K|
  (what Filan et al.'s code computes; equals |w| for a single entry);
- ``nnz``: number of nonzero entries of the slice (stored entries for a chain's CSR weight).

An edge exists iff its slice has a nonzero entry (for a CSR weight from a
:class:`~modgraph.network.LayeredNetwork`: iff the entry is stored, so a kept 0.0 is an edge).
Per-channel gains (BatchNormalization |s|, see :mod:`modgraph.dag`) are multiplied in for the
magnitude norms: an edge u -> v carries ``gain[v] * path_scale / gain[u]`` where ``path_scale``
is the product of |s| of the affine ops between u and v (``nnz`` counts entries and ignores gains).

Examples
--------
>>> import numpy as np
>>> from modgraph.dag_builder import DagBuilder
>>> b = DagBuilder()
>>> x = b.input("x", channels=1, spatial=(3, 3))
>>> t = b.conv("c", x, np.array([[[[1.0, -2.0], [0.0, 3.0]]]]))
>>> e = unit_edges(b.build(outputs=[t]), edge_norm="filan")
>>> e.src.tolist(), e.dst.tolist(), e.weight.tolist(), e.type_names()
([0], [1], [5.0], ['conv'])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["DagEdges", "unit_edges", "EDGE_TYPES", "EDGE_NORMS"]

#: Edge types, in code order (``DagEdges.type`` holds indices into this tuple).
EDGE_TYPES = ("conv", "dense", "dense_from_conv", "identity", "gate")
#: The reductions of a kernel slice to one edge weight.
EDGE_NORMS = ("l1", "l2", "filan", "nnz")


@dataclass(frozen=True, eq=False)
class DagEdges:
    """Edges of a DAG's units: parallel arrays, one entry per edge.

    Attributes
    ----------
    src, dst : int64 arrays
        Global unit numbers (see ``DagNetwork.unit_offsets``).
    weight : float64 array
        The edge weight under the chosen norm (never negative).
    type : int8 array
        Index into :data:`EDGE_TYPES`.
    nnz : int64 array
        Nonzero entries of the kernel slice behind the edge (1 for identity/gate edges).
    """

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    type: np.ndarray
    nnz: np.ndarray

    @property
    def n_edges(self) -> int:
        return int(self.src.size)

    def type_names(self) -> list[str]:
        """The type of each edge as a string."""
        return [EDGE_TYPES[t] for t in self.type]

    def by_type(self) -> dict[str, "DagEdges"]:
        """One :class:`DagEdges` per edge type present, in :data:`EDGE_TYPES` order."""
        out = {}
        for code, name in enumerate(EDGE_TYPES):
            sel = self.type == code
            if sel.any():
                out[name] = DagEdges(self.src[sel], self.dst[sel], self.weight[sel], self.type[sel],
                                     self.nnz[sel])
        return out


def _reduce(k: np.ndarray, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """(weight, nnz) of every 2-D slice over the last two axes of ``k``."""
    nnz = np.count_nonzero(k, axis=(-2, -1))
    if norm == "nnz":
        return nnz.astype(np.float64), nnz
    a = np.abs(k)
    if norm == "l1":
        return a.sum(axis=(-2, -1), dtype=np.float64), nnz
    if norm == "l2":
        a = a.astype(np.float64)
        return np.sqrt(np.einsum("...ij,...ij->...", a, a)), nnz
    return a.sum(axis=-2, dtype=np.float64).max(axis=-1), nnz     # filan: max column sum of the slice


def _channel_sources(net, slot: int, gains: np.ndarray, scaled: bool):
    """Per input channel of ``slot``: its global unit (−1 = none) and the factor path_scale / gain."""
    m = net.tensor_maps[slot]
    src = np.where(m.group >= 0, net.unit_offsets[np.maximum(m.group, 0)] + m.unit, -1)
    factor = m.scale / gains[np.maximum(src, 0)] if scaled else np.ones(src.size)
    return src, factor


def _edges(net, slot, gains, scaled, code, red, nnz, in_of, dst_of, dst_off):
    """Edges for the nonzero (row, col) entries of ``nnz``; ``in_of``/``dst_of`` map them to channels."""
    rows, cols = np.nonzero(nnz)
    w, cnt = red[rows, cols], nnz[rows, cols]
    in_ch, out = in_of(rows, cols), dst_of(rows, cols)
    src, factor = _channel_sources(net, slot, gains, scaled)
    src = src[in_ch]
    keep = src >= 0
    if not keep.all():
        src, in_ch, out, w, cnt = src[keep], in_ch[keep], out[keep], w[keep], cnt[keep]
    dst = dst_off + out
    if scaled:
        w = w * factor[in_ch] * gains[dst]
    return src, dst, w, np.full(src.size, code, np.int8), cnt


def _weighted(net, g: int, grp, norm: str, gains):
    off, (slot,) = net.unit_offsets[g], grp.inputs
    m, k, scaled = net.tensor_maps[slot], grp.weight, norm != "nnz"
    if sp.issparse(k):                                           # a LayeredNetwork layer: stored = edge
        rows = np.repeat(np.arange(k.shape[0]), np.diff(k.indptr))
        val = np.ones(k.nnz) if norm == "nnz" else np.abs(np.asarray(k.data, dtype=np.float64))
        src, factor = _channel_sources(net, slot, gains, scaled)
        src, dst = src[k.indices], off + rows
        w = val * factor[k.indices] * gains[dst] if scaled else val
        return src, dst, w, np.full(k.nnz, 1, np.int8), np.ones(k.nnz, np.int64)
    if grp.op_type == "dense":
        if m.flat is None:
            red, nnz, code = *_reduce(k[:, :, None, None], norm), 1     # (J, F)
        else:
            h, wd, order = m.flat
            c = m.group.size
            k4 = k.reshape(k.shape[0], c, h, wd) if order == "CHW" else \
                k.reshape(k.shape[0], h, wd, c).transpose(0, 3, 1, 2)
            red, nnz, code = *_reduce(k4, norm), 2                       # (J, C)
        return _edges(net, slot, gains, scaled, code, red, nnz, lambda r, c: c, lambda r, c: r, off)
    red, nnz = _reduce(k, norm)
    per_group = k.shape[0] // grp.params["group"]                 # O/g (conv) or I/g (conv_transpose)
    spread = lambda r, c: (r // per_group) * k.shape[1] + c       # noqa: E731
    if grp.op_type == "conv":                                    # K (O, I/g): o reads q*(I/g) + j
        return _edges(net, slot, gains, scaled, 0, red, nnz, spread, lambda r, c: r, off)
    return _edges(net, slot, gains, scaled, 0, red, nnz, lambda r, c: r, spread, off)   # K (I, O/g)


def _merge(net, g: int, grp, norm: str, gains):
    code = EDGE_TYPES.index("identity" if grp.op_type == "add" else "gate")
    ones = np.ones((grp.n_units, 1), np.int64)
    parts = [_edges(net, slot, gains, norm != "nnz", code, ones.astype(np.float64), ones,
                    lambda r, c: r, lambda r, c: r, net.unit_offsets[g]) for slot in grp.inputs]
    return tuple(np.concatenate(col) for col in zip(*parts))


def unit_edges(net, *, edge_norm: str = "l1") -> DagEdges:
    """All edges of ``net`` (a :class:`~modgraph.dag.DagNetwork`), every type, in group order."""
    if edge_norm not in EDGE_NORMS:
        raise ValueError(f"unknown edge_norm {edge_norm!r}; choose one of {', '.join(EDGE_NORMS)}")
    gains = np.concatenate([grp.gain for grp in net.groups]).astype(np.float64)
    parts = []
    for g, grp in enumerate(net.groups):
        if grp.kind == "input":
            continue
        fn = _merge if grp.op_type in ("add", "mul") else _weighted
        parts.append(fn(net, g, grp, edge_norm, gains))
    if not parts:
        z = np.zeros(0, np.int64)
        return DagEdges(z, z, np.zeros(0), np.zeros(0, np.int8), z)
    columns = [list(col) for col in zip(*parts)]
    del parts
    out = []
    for col in columns:                       # one column at a time: each group's pieces freed as joined
        out.append(np.concatenate(col))
        col.clear()
    src, dst, w, t, nnz = out
    return DagEdges(src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False),
                    w.astype(np.float64, copy=False), t, nnz.astype(np.int64, copy=False))
