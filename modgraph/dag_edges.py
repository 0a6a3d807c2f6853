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

The edges are computed as :class:`EdgeBlocks` (:func:`edge_blocks`): one matrix per weighted
group and input (rows its units, columns its input channels, unit numbers implicit from the group
offsets), float32 for float32 weights (the float64 weight rounded once: ~4 bytes an edge instead
of the 33 of a listed edge) and float64 otherwise (bit for bit the listed weights); identity and
gate edges are small and listed in float64. :meth:`EdgeBlocks.edges` (and :func:`unit_edges`)
list them as parallel arrays, in group order. The split view of
:func:`~modgraph.graph.build_unit_graph` keeps the blocks and lists its edges on first read.

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
>>> edge_blocks(b.build(outputs=[t])).blocks[0].value
array([[6.]])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["DagEdges", "EdgeBlock", "EdgeBlocks", "edge_blocks", "unit_edges", "EDGE_TYPES", "EDGE_NORMS"]

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


def _reduce(k: np.ndarray, norm: str, *, count: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(weight, nnz) of every 2-D slice over the last two axes of ``k`` (nnz None unless ``count``)."""
    nnz = np.count_nonzero(k, axis=(-2, -1)) if count or norm == "nnz" else None
    if norm == "nnz":
        return nnz.astype(np.float64), nnz
    a = np.abs(k)
    if norm == "l1":
        return a.sum(axis=(-2, -1), dtype=np.float64), nnz
    if norm == "l2":
        a = a.astype(np.float64)
        return np.sqrt(np.einsum("...ij,...ij->...", a, a)), nnz
    return a.sum(axis=-2, dtype=np.float64).max(axis=-1), nnz     # filan: max column sum of the slice


#: Kernel slices reduced per step: bounds a group's float64 temporaries (a 1000 x 2048 dense
#: layer is reduced in 8 steps, not as one 16 MB float64 array).
_CHUNK = 1 << 18


@dataclass(frozen=True, eq=False)
class EdgeBlock:
    """The typed edges from one tensor slot into one unit group, without per-edge unit numbers.

    A *matrix* block holds ``value``, the (rows, cols) edge weights in the kernel's orientation:
    rows are the group's units and cols the input channels (``transposed``, a conv-transpose:
    rows the input channels, cols the units of one channel group). An entry is an edge iff it is
    nonzero, or iff ``mask`` is true when ``mask`` is set (an edge of weight 0: a zero gain). Unit
    numbers are implicit: input channel ``ch`` is global unit ``src_units[ch]``, unit ``u`` of the
    group is ``dst_off + u``; with ``per`` > 0 (grouped conv) row ``r`` spans channels
    ``(r // per) * cols + c``. ``value`` is float32 when the kernel is (the float64 weight rounded
    once), float64 otherwise. A *list* block (a chain's CSR layer, a merge's identity or gate
    edges) holds its edges as ``arrays`` = (src, dst, weight, nnz).
    """

    code: int
    dst_group: int
    n_edges: int
    dst_off: int = 0
    value: np.ndarray | None = None
    mask: np.ndarray | None = None
    src_units: np.ndarray | None = None
    per: int = 0
    transposed: bool = False
    kernel: np.ndarray | None = None          # (rows, cols, kh, kw) view of the weights: nnz on demand
    arrays: tuple | None = None

    def _channels(self, rows, cols):
        """(input channel, unit of the group) of the entries (rows, cols); broadcasts."""
        spread = (rows // self.per) * self.value.shape[1] + cols if self.per else cols
        return (rows, spread) if self.transposed else (spread, rows)

    def edges(self, *, nnz: bool = True) -> tuple:
        """(src, dst, weight float64, nnz or None) of this block's edges, entries in row-major order."""
        if self.arrays is not None:
            return self.arrays
        n_rows, n_cols = self.value.shape
        full = self.mask is None and self.n_edges == self.value.size         # every entry an edge
        if full:                                 # np.nonzero's row-major order, without the search
            rows, cols = np.repeat(np.arange(n_rows), n_cols), np.tile(np.arange(n_cols), n_rows)
        else:
            rows, cols = np.nonzero(self.value if self.mask is None else self.mask)
        if full and not self.per and not self.transposed:
            in_ch, out = cols, rows
            src = np.tile(self.src_units, n_rows)
        else:
            in_ch, out = self._channels(rows, cols)
            src = self.src_units[in_ch]
        counts = None
        if nnz:                                  # recounted from the kernel, chunk by chunk (rows are sorted)
            counts = np.empty(rows.size, np.int64)
            steps = _steps(self.value.shape)
            cut = np.searchsorted(rows, [r0 for r0, _ in steps] + [self.value.shape[0]])
            for (r0, s), a, b in zip(steps, cut[:-1], cut[1:]):
                counts[a:b] = np.count_nonzero(self.kernel[r0:r0 + s], axis=(-2, -1))[rows[a:b] - r0, cols[a:b]]
        w = self.value.ravel() if full else self.value[rows, cols]
        return (src, self.dst_off + out, w.astype(np.float64), counts)


def _steps(shape):
    """(first row, rows) of the chunks a (rows, cols) block is reduced in."""
    step = max(1, _CHUNK // max(int(shape[1]), 1))
    return [(r0, min(step, shape[0] - r0)) for r0 in range(0, shape[0], step)]


@dataclass(frozen=True, eq=False)
class EdgeBlocks:
    """All typed edges of a DagNetwork as blocks (:func:`edge_blocks`); :meth:`edges` lists them."""

    blocks: tuple
    n_groups: int
    edge_norm: str

    @property
    def n_edges(self) -> int:
        return int(sum(b.n_edges for b in self.blocks))

    def counts_by_type(self) -> np.ndarray:
        """Edges per type, in :data:`EDGE_TYPES` order."""
        out = np.zeros(len(EDGE_TYPES), np.int64)
        for b in self.blocks:
            out[b.code] += b.n_edges
        return out

    def counts_into_groups(self) -> np.ndarray:
        """Edges into each unit group."""
        out = np.zeros(self.n_groups, np.int64)
        for b in self.blocks:
            out[b.dst_group] += b.n_edges
        return out

    def edges(self, *, nnz: bool = True) -> "DagEdges":
        """The edges as parallel arrays (int64 units, float64 weights), in group order."""
        if not self.blocks:
            z = np.zeros(0, np.int64)
            return DagEdges(z, z, np.zeros(0), np.zeros(0, np.int8), z if nnz else None)
        cols = [[], [], [], [], []]
        for b in self.blocks:
            src, dst, w, cnt = b.edges(nnz=nnz)
            for col, arr in zip(cols, (src, dst, w, np.full(src.size, b.code, np.int8), cnt)):
                col.append(arr)
        out = []
        for col in cols:                       # one column at a time: each block's pieces freed as joined
            out.append(None if col[0] is None else np.concatenate(col))
            col.clear()
        src, dst, w, t, cnt = out
        return DagEdges(src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False),
                        w.astype(np.float64, copy=False), t, None if cnt is None else cnt.astype(np.int64, copy=False))


def _channel_sources(net, slot: int, gains: np.ndarray, scaled: bool):
    """Per input channel of ``slot``: its global unit (−1 = none) and the factor path_scale / gain.

    A unit of gain 0 (a BN with gamma = 0: every consumer sees path scale 0) has factor 1, the limit
    of path_scale / gain, not 0/0: its outgoing edges keep their kernel weight, its incoming ones are 0.
    """
    m = net.tensor_maps[slot]
    src = np.where(m.group >= 0, net.unit_offsets[np.maximum(m.group, 0)] + m.unit, -1)
    if not scaled:
        return src, np.ones(src.size)
    g = gains[np.maximum(src, 0)]
    return src, np.divide(m.scale, g, out=np.ones(src.size), where=g != 0)


def _matrix_block(net, g, slot, k4, norm, gains, code, per=0, transposed=False) -> EdgeBlock:
    """Reduce the (rows, cols, kh, kw) kernel ``k4`` chunk by chunk into one matrix block."""
    off, scaled = int(net.unit_offsets[g]), norm != "nnz"
    src, factor = _channel_sources(net, slot, gains, scaled)
    shape = k4.shape[:2]
    value = np.empty(shape, np.float32 if k4.dtype.itemsize <= 4 else np.float64)
    blk = EdgeBlock(code, g, 0, off, value, None, src, per, transposed, k4)
    # An all-zero slice reduces to 0 and a slice with a nonzero entry to > 0 (or NaN) under l1 and
    # filan, and under l2 for float32 kernels (their squares cannot underflow in float64): no count.
    counted = norm == "nnz" or (norm == "l2" and k4.dtype.itemsize > 4)
    mask, n_edges, valid = None, 0, src >= 0
    n_dst = value.shape[1] * (value.shape[0] // per if per else 1) if transposed else value.shape[0]
    if scaled and valid.all() and (factor == 1).all() and (gains[off:off + n_dst] == 1).all():
        scaled = False                                         # gains of 1: multiplying changes no bit
    if not scaled and norm != "nnz" and k4.shape[2:] == (1, 1) and valid.all() and (norm != "l2" or not counted):
        np.abs(k4[:, :, 0, 0], out=value)      # a 1x1 slice reduces to |w| exactly (l2: float32 squares are exact)
        n = value.size if value.size and value.min() > 0 else int(np.count_nonzero(value))   # min: fast path
        return EdgeBlock(code, g, n, off, value, None, src, per, transposed, k4)
    for r0, s in _steps(shape):
        red, cnt = _reduce(k4[r0:r0 + s], norm, count=counted)
        in_ch, out = blk._channels(np.arange(r0, r0 + s)[:, None], np.arange(shape[1])[None, :])
        exists = cnt > 0 if counted else red != 0
        if not valid.all():
            exists &= valid[in_ch]
        n = int(np.count_nonzero(exists))
        if scaled:                                             # the old per-edge product, entry by entry
            red *= factor[in_ch]
            red *= gains[off + out]
        v = value[r0:r0 + s]
        np.copyto(v, red if n == exists.size else np.where(exists, red, 0.0), casting="unsafe")
        n_edges += n
        zero = v.min() == 0 if n and n == exists.size else np.count_nonzero(v) != n
        if mask is None and zero:
            mask = np.zeros(shape, bool)                       # an edge of weight 0: keep where edges are
            mask[:r0] = value[:r0] != 0
        if mask is not None:
            mask[r0:r0 + s] = exists
    return EdgeBlock(code, g, n_edges, off, value, mask, src, per, transposed, k4)


def _weighted(net, g: int, grp, norm: str, gains) -> EdgeBlock:
    off, (slot,) = net.unit_offsets[g], grp.inputs
    m, k, scaled = net.tensor_maps[slot], grp.weight, norm != "nnz"
    if sp.issparse(k):                                           # a LayeredNetwork layer: stored = edge
        rows = np.repeat(np.arange(k.shape[0]), np.diff(k.indptr))
        val = np.ones(k.nnz) if norm == "nnz" else np.abs(np.asarray(k.data, dtype=np.float64))
        src, factor = _channel_sources(net, slot, gains, scaled)
        src, dst = src[k.indices], off + rows
        w = val * factor[k.indices] * gains[dst] if scaled else val
        return EdgeBlock(1, g, int(k.nnz), arrays=(src, dst, w, np.ones(k.nnz, np.int64)))
    if grp.op_type == "dense":
        if m.flat is None:
            return _matrix_block(net, g, slot, k[:, :, None, None], norm, gains, 1)
        h, wd, order = m.flat
        c = m.group.size
        k4 = k.reshape(k.shape[0], c, h, wd) if order == "CHW" else \
            k.reshape(k.shape[0], h, wd, c).transpose(0, 3, 1, 2)
        return _matrix_block(net, g, slot, k4, norm, gains, 2)
    n_groups = grp.params["group"]
    per = k.shape[0] // n_groups if n_groups > 1 else 0          # O/g (conv) or I/g (conv_transpose)
    return _matrix_block(net, g, slot, k, norm, gains, 0, per, grp.op_type != "conv")


def _merge(net, g: int, grp, norm: str, gains) -> list[EdgeBlock]:
    code = EDGE_TYPES.index("identity" if grp.op_type == "add" else "gate")
    dst_all = net.unit_offsets[g] + np.arange(grp.n_units)
    out = []
    for slot in grp.inputs:
        src, factor = _channel_sources(net, slot, gains, norm != "nnz")
        keep = src >= 0
        src, dst = src[keep], dst_all[keep]
        w = np.ones(src.size) * factor[keep] * gains[dst] if norm != "nnz" else np.ones(src.size)
        out.append(EdgeBlock(code, g, int(src.size), arrays=(src, dst, w, np.ones(src.size, np.int64))))
    return out


def edge_blocks(net, *, edge_norm: str = "l1") -> EdgeBlocks:
    """All edges of ``net`` (a :class:`~modgraph.dag.DagNetwork`) as :class:`EdgeBlocks`, in group
    order: one float32 (float64 for float64 weights) matrix per weighted group, ~4 bytes per edge
    of a float32 network; unit numbers stay implicit until :meth:`EdgeBlocks.edges`."""
    if edge_norm not in EDGE_NORMS:
        raise ValueError(f"unknown edge_norm {edge_norm!r}; choose one of {', '.join(EDGE_NORMS)}")
    gains = np.concatenate([grp.gain for grp in net.groups]).astype(np.float64)
    blocks = []
    for g, grp in enumerate(net.groups):
        if grp.kind == "input":
            continue
        if grp.op_type in ("add", "mul"):
            blocks += _merge(net, g, grp, edge_norm, gains)
        else:
            blocks.append(_weighted(net, g, grp, edge_norm, gains))
    return EdgeBlocks(tuple(blocks), len(net.groups), edge_norm)


def unit_edges(net, *, edge_norm: str = "l1") -> DagEdges:
    """All edges of ``net`` (a :class:`~modgraph.dag.DagNetwork`), every type, in group order."""
    return edge_blocks(net, edge_norm=edge_norm).edges()
