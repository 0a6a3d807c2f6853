"""The block form of the typed unit edges (``edge_blocks``) against the edge list it replaced.

``_listed_edges`` below is modgraph's previous ``unit_edges`` (commit a8f45df), kept verbatim as
the reference: it listed every edge group by group in int64 / float64. The blocks must give the
same edges in the same order: bit for bit for float64 weights; for float32 weights the kernel
edges' weights are the reference's float64 weights rounded once to float32 (identity and gate
edges stay float64). The toys are ResNet-like (BN, residual Add with a BN
after it, 1x1 strided shortcut, depthwise and grouped convs, channel concat and zero pad, a
conv-transpose, flatten in both orders -> dense) with pruned slices and a zero BN gain.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from modgraph import dag_edges
from modgraph.dag_builder import DagBuilder
from modgraph.dag_edges import EDGE_NORMS, EDGE_TYPES, edge_blocks, unit_edges
from modgraph.graph import build_unit_graph, condense


def _toy(dtype, *, order="CHW", zero_gain=True, prune=0.2, seed=0):
    rng = np.random.default_rng(seed)

    def w(*shape):
        a = rng.standard_normal(shape)
        a[rng.random(shape) < prune] = 0.0                  # single pruned entries
        if len(shape) == 4:
            a[rng.random(shape[:2]) < prune] = 0.0          # whole pruned kernel slices
        return a.astype(dtype)

    def bn(b, x, c, zero=False):
        gamma = rng.uniform(-1.5, 1.5, c)
        if zero:
            gamma[1] = 0.0                                  # a zero gain: edges of weight 0 stay edges
        return b.batch_norm(x, gamma, rng.normal(size=c), rng.normal(size=c), rng.uniform(0.5, 2, c))

    b = DagBuilder()
    x = b.input("x", channels=3, spatial=(8, 8))
    h = b.activation(bn(b, b.conv("stem", x, w(8, 3, 3, 3), pads=(1, 1, 1, 1)), 8), "relu")
    t = b.activation(bn(b, b.conv("b.conv1", h, w(8, 8, 1, 1)), 8), "relu")
    t = b.activation(bn(b, b.conv("b.dw", t, w(8, 1, 3, 3), pads=(1, 1, 1, 1), strides=2, group=8), 8), "relu")
    t = bn(b, b.conv("b.conv3", t, w(12, 8, 1, 1)), 12, zero=zero_gain)
    short = bn(b, b.conv("b.down", h, w(12, 8, 1, 1), strides=2), 12)
    a = b.activation(bn(b, b.add("b.add", [t, short]), 12), "relu")             # BN after the Add
    g = b.conv("grouped", a, w(6, 4, 3, 3), pads=(1, 1, 1, 1), group=3)
    cat = b.pad_channels(b.concat([g, a]), 1, 2)                                 # 21 channels, 3 without unit
    u = b.conv_transpose("up", cat, w(21, 2, 2, 2), strides=2, group=7)          # 14 channels
    p = b.max_pool(u, 2)
    d = b.dense("fc", b.flatten(p, order=order), w(5, 14 * 4 * 4))
    return b.build(outputs=[d])


def _assert_same(got, want, dtype):
    for name, a, ref in zip(("src", "dst", "weight", "type", "nnz"),
                            (got.src, got.dst, got.weight, got.type, got.nnz), want):
        assert a.dtype == ref.dtype, name
        if name == "weight" and dtype == np.float32:                            # kernel edges rounded once;
            ref = np.where(want[3] < 3, ref.astype(np.float32), ref)            # identity/gate stay float64
        np.testing.assert_array_equal(a, ref, err_msg=name)


@pytest.mark.parametrize("chunk", [1 << 18, 5])
@pytest.mark.parametrize("order", ["CHW", "HWC"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("edge_norm", EDGE_NORMS)
def test_blocks_list_the_old_edges(edge_norm, dtype, order, chunk, monkeypatch):
    monkeypatch.setattr(dag_edges, "_CHUNK", chunk)                              # 5: several chunks a block
    net = _toy(dtype, order=order)
    want = _listed_edges(net, edge_norm)
    blocks = edge_blocks(net, edge_norm=edge_norm)
    assert blocks.n_edges == want[0].size
    np.testing.assert_array_equal(blocks.counts_by_type(), np.bincount(want[3], minlength=len(EDGE_TYPES)))
    _assert_same(blocks.edges(), want, dtype)
    _assert_same(unit_edges(net, edge_norm=edge_norm), want, dtype)
    assert set(EDGE_TYPES[t] for t in want[3]) == {"conv", "identity", "dense_from_conv"}


def test_a_zero_gain_keeps_its_edges_with_weight_zero():
    net = _toy(np.float32)
    blk = next(b for b in edge_blocks(net).blocks if net.groups[b.dst_group].name == "b.conv3")
    assert blk.mask is not None and blk.n_edges == int(blk.mask.sum()) > np.count_nonzero(blk.value)
    e = unit_edges(net)
    conv3 = net.unit_offsets[net._index["b.conv3"]]
    assert e.n_edges == _listed_edges(net, "l1")[0].size and (e.weight[e.dst == conv3 + 1] == 0).all()
    assert (e.dst == conv3 + 1).any()
    assert not np.isnan(e.weight).any()                # its outgoing identity edge: factor 1, not 0/0
    out = (e.src == conv3 + 1) & (e.type == EDGE_TYPES.index("identity"))
    assert out.sum() == 1 and e.weight[out][0] == net.group("b.add").gain[1]
    assert edge_blocks(_toy(np.float32, zero_gain=False)).blocks[2].mask is None


def test_storage_is_float32_for_float32_weights_and_smaller_than_the_list():
    blocks = edge_blocks(_toy(np.float32, prune=0.0))
    mats = [b for b in blocks.blocks if b.value is not None]
    assert {b.value.dtype for b in mats} == {np.dtype(np.float32)}
    f64 = edge_blocks(_toy(np.float64)).blocks
    assert {b.value.dtype for b in f64 if b.value is not None} == {np.dtype(np.float64)}
    n_kernel_edges = sum(b.n_edges for b in mats)
    assert sum(b.value.nbytes for b in mats) < 4.5 * n_kernel_edges     # unpruned: ~4 bytes an edge (list: 33)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_split_view_lists_its_edges_on_first_read(dtype):
    net = _toy(dtype)
    g = build_unit_graph(net)
    assert g.blocks is not None and g.__dict__["_src"] is None
    want = _listed_edges(net, "l1")
    assert g.n_edges == want[0].size and g.__dict__["_src"] is None                 # counted, not listed
    np.testing.assert_array_equal(g.edge_counts(), np.bincount(want[3], minlength=len(EDGE_TYPES)))
    s = net.summary()
    assert s["n_edges"] == want[0].size and g.__dict__["_src"] is None
    np.testing.assert_array_equal(g.src, want[0])
    np.testing.assert_array_equal(g.dst, want[1])
    np.testing.assert_array_equal(g.edge_type, want[3])
    ref_w = want[2] if dtype == np.float64 else np.where(want[3] < 3, want[2].astype(np.float32), want[2])
    np.testing.assert_array_equal(g.value, ref_w)
    assert g.src is g.src and g.n_edges == g.src.size                              # listed once, kept
    assert condense(g) is g                                  # nothing dead: the same graph, not a copy
    keep = np.ones(g.n_units, bool)
    keep[g.src[0]] = False
    c = g.subgraph(keep)                                     # replace(): plain arrays, no blocks
    assert c.blocks is None and c.n_edges == c.src.size == int((keep[g.src] & keep[g.dst]).sum())
    np.testing.assert_array_equal(g.edge_counts(), np.bincount(g.edge_type, minlength=len(EDGE_TYPES)))
    a = g.adjacency(directed=True)
    assert sp.issparse(a) and a.nnz <= g.n_edges


def test_coupled_and_filan_views_unchanged_by_the_lazy_split():
    net = _toy(np.float64)
    split = build_unit_graph(net)
    coupled = build_unit_graph(net, view="coupled")
    ident = split.edge_type == EDGE_TYPES.index("identity")
    assert coupled.n_edges <= int((~ident).sum()) and coupled.blocks is None
    assert build_unit_graph(net, view="filan").blocks is None


# -- the reference: modgraph a8f45df's unit_edges, verbatim but for names and one fix: a unit of
# -- gain 0 (BN gamma = 0) gave its outgoing edges weight 0/0 = NaN; now factor 1 (see _old_sources)
def _old_reduce(k: np.ndarray, norm: str) -> tuple[np.ndarray, np.ndarray]:
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


def _old_sources(net, slot: int, gains: np.ndarray, scaled: bool):
    """Per input channel of ``slot``: its global unit (−1 = none) and the factor path_scale / gain."""
    m = net.tensor_maps[slot]
    src = np.where(m.group >= 0, net.unit_offsets[np.maximum(m.group, 0)] + m.unit, -1)
    factor = np.divide(m.scale, gains[np.maximum(src, 0)], out=np.ones(src.size),  # 0/0 -> 1: the one
                       where=gains[np.maximum(src, 0)] != 0) if scaled else np.ones(src.size)  # change made
    return src, factor


def _old_edges(net, slot, gains, scaled, code, red, nnz, in_of, dst_of, dst_off):
    """Edges for the nonzero (row, col) entries of ``nnz``; ``in_of``/``dst_of`` map them to channels."""
    rows, cols = np.nonzero(nnz)
    w, cnt = red[rows, cols], nnz[rows, cols]
    in_ch, out = in_of(rows, cols), dst_of(rows, cols)
    src, factor = _old_sources(net, slot, gains, scaled)
    src = src[in_ch]
    keep = src >= 0
    if not keep.all():
        src, in_ch, out, w, cnt = src[keep], in_ch[keep], out[keep], w[keep], cnt[keep]
    dst = dst_off + out
    if scaled:
        w = w * factor[in_ch] * gains[dst]
    return src, dst, w, np.full(src.size, code, np.int8), cnt


def _old_weighted(net, g: int, grp, norm: str, gains):
    off, (slot,) = net.unit_offsets[g], grp.inputs
    m, k, scaled = net.tensor_maps[slot], grp.weight, norm != "nnz"
    if sp.issparse(k):                                           # a LayeredNetwork layer: stored = edge
        rows = np.repeat(np.arange(k.shape[0]), np.diff(k.indptr))
        val = np.ones(k.nnz) if norm == "nnz" else np.abs(np.asarray(k.data, dtype=np.float64))
        src, factor = _old_sources(net, slot, gains, scaled)
        src, dst = src[k.indices], off + rows
        w = val * factor[k.indices] * gains[dst] if scaled else val
        return src, dst, w, np.full(k.nnz, 1, np.int8), np.ones(k.nnz, np.int64)
    if grp.op_type == "dense":
        if m.flat is None:
            red, nnz, code = *_old_reduce(k[:, :, None, None], norm), 1     # (J, F)
        else:
            h, wd, order = m.flat
            c = m.group.size
            k4 = k.reshape(k.shape[0], c, h, wd) if order == "CHW" else \
                k.reshape(k.shape[0], h, wd, c).transpose(0, 3, 1, 2)
            red, nnz, code = *_old_reduce(k4, norm), 2                       # (J, C)
        return _old_edges(net, slot, gains, scaled, code, red, nnz, lambda r, c: c, lambda r, c: r, off)
    red, nnz = _old_reduce(k, norm)
    per_group = k.shape[0] // grp.params["group"]                 # O/g (conv) or I/g (conv_transpose)
    spread = lambda r, c: (r // per_group) * k.shape[1] + c       # noqa: E731
    if grp.op_type == "conv":                                    # K (O, I/g): o reads q*(I/g) + j
        return _old_edges(net, slot, gains, scaled, 0, red, nnz, spread, lambda r, c: r, off)
    return _old_edges(net, slot, gains, scaled, 0, red, nnz, lambda r, c: r, spread, off)   # K (I, O/g)


def _old_merge(net, g: int, grp, norm: str, gains):
    code = EDGE_TYPES.index("identity" if grp.op_type == "add" else "gate")
    ones = np.ones((grp.n_units, 1), np.int64)
    parts = [_old_edges(net, slot, gains, norm != "nnz", code, ones.astype(np.float64), ones,
                    lambda r, c: r, lambda r, c: r, net.unit_offsets[g]) for slot in grp.inputs]
    return tuple(np.concatenate(col) for col in zip(*parts))


def _listed_edges(net, edge_norm):
    """The edge list as modgraph a8f45df computed it, group by group (int64 / float64 arrays)."""
    gains = np.concatenate([grp.gain for grp in net.groups]).astype(np.float64)
    parts = []
    for g, grp in enumerate(net.groups):
        if grp.kind == "input":
            continue
        fn = _old_merge if grp.op_type in ("add", "mul") else _old_weighted
        parts.append(fn(net, g, grp, edge_norm, gains))
    if not parts:
        z = np.zeros(0, np.int64)
        return (z, z, np.zeros(0), np.zeros(0, np.int8), z)
    columns = [list(col) for col in zip(*parts)]
    del parts
    out = []
    for col in columns:                       # one column at a time: each group's pieces freed as joined
        out.append(np.concatenate(col))
        col.clear()
    src, dst, w, t, nnz = out
    return (src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False),
                    w.astype(np.float64, copy=False), t, nnz.astype(np.int64, copy=False))
