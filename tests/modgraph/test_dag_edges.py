"""Typed unit edges against a straightforward loop over the PyTorch modules' weight tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modgraph.dag_builder import DagBuilder
from modgraph.dag_edges import EDGE_NORMS, unit_edges


def _np(t):
    return t.detach().numpy().astype(np.float64)


def _norm(k: np.ndarray, edge_norm: str) -> float:
    """The reference reduction of one 2-D slice, written plainly."""
    if edge_norm == "l1":
        return float(np.abs(k).sum())
    if edge_norm == "l2":
        return float(np.linalg.norm(k, "fro"))
    if edge_norm == "filan":
        return float(np.linalg.norm(np.abs(k), ord=1))
    return float(np.count_nonzero(k))


def _model(seed):
    torch.manual_seed(seed)
    mods = nn.ModuleDict(dict(c1=nn.Conv2d(3, 4, 3, padding=1), bn1=nn.BatchNorm2d(4),
                              g=nn.Conv2d(4, 6, 3, padding=1, groups=2), sc=nn.Conv2d(4, 6, 1),
                              bn_add=nn.BatchNorm2d(6), t=nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2),
                              fc=nn.Linear(8 * 4 * 4, 5)))
    for bn in (mods.bn1, mods.bn_add):
        with torch.no_grad():
            bn.weight.uniform_(-1.5, 1.5)
            bn.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():                            # pruned entries: a whole slice and single weights
        mods.g.weight[3, 1] = 0.0      # out 3 (group 1) x in 1 of its group = c1:3
        mods.c1.weight[0, 1, 0, 0] = 0.0
        mods.fc.weight[:, :16] = 0.0                 # fc reads nothing from the first flattened channel
    return mods.eval()


def _bn_scale(bn):
    return _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)


def _build(m, order):
    b = DagBuilder()
    x = b.input("x", channels=3, spatial=(4, 4))
    s1 = _bn_scale(m.bn1)
    c1 = b.conv("c1", x, _np(m.c1.weight), _np(m.c1.bias), pads=(1, 1, 1, 1))
    h = b.activation(b.affine(c1, s1, np.zeros(4)), "relu")
    a = b.add("add", [b.conv("g", h, _np(m.g.weight), pads=(1, 1, 1, 1), group=2), b.conv("sc", h, _np(m.sc.weight))])
    a = b.affine(a, _bn_scale(m.bn_add), np.zeros(6))
    t = b.conv_transpose("t", a, _np(m.t.weight), strides=2, group=2)           # (4, 8, 8)
    p = b.max_pool(t, 2)                                                         # (4, 4, 4)
    cat = b.concat([p, c1])                   # c1 raw here: its units are read with and without BN
    fc = b.dense("fc", b.flatten(cat, order=order), _np(m.fc.weight))
    return b.build(outputs=[fc])


def _reference(m, edge_norm, order):
    """{(src, dst, type): weight} from the torch tensors, loop by loop."""
    g1, ga = np.abs(_bn_scale(m.bn1)), np.abs(_bn_scale(m.bn_add))
    mag = edge_norm != "nnz"
    ref = {}

    def put(src, dst, kind, k, scale=1.0):
        if np.count_nonzero(k):
            ref[(src, dst, kind)] = _norm(k, edge_norm) * (scale if mag else 1.0)

    w = _np(m.c1.weight)
    # c1's units are read both through bn1 (by g, sc) and raw (by the concat): no gain folded into c1
    for o in range(4):
        for i in range(3):
            put(f"x:{i}", f"c1:{o}", "conv", w[o, i])
    for o in range(6):
        q = o // 3
        for j in range(2):
            put(f"c1:{q * 2 + j}", f"g:{o}", "conv", _np(m.g.weight)[o, j], g1[q * 2 + j])
        for i in range(4):
            put(f"c1:{i}", f"sc:{o}", "conv", _np(m.sc.weight)[o, i], g1[i])
    for c in range(6):                         # bn_add after the Add: its gain on the add's incoming edges
        for grp in ("g", "sc"):
            ref[(f"{grp}:{c}", f"add:{c}", "identity")] = ga[c] if mag else 1.0
    wt = _np(m.t.weight)                       # (6, 2, 2, 2): in-channel i of group i // 3 -> out (i // 3) * 2 + j
    for i in range(6):
        for j in range(2):
            put(f"add:{i}", f"t:{(i // 3) * 2 + j}", "conv", wt[i, j])
    wf = _np(m.fc.weight)
    units = [f"t:{c}" for c in range(4)] + [f"c1:{c}" for c in range(4)]
    for jj in range(5):
        for c, u in enumerate(units):
            cols = [c * 16 + s for s in range(16)] if order == "CHW" else [s * 8 + c for s in range(16)]
            put(u, f"fc:{jj}", "dense_from_conv", wf[jj, cols].reshape(4, 4))
    return ref


@pytest.mark.parametrize("order", ["CHW", "HWC"])
@pytest.mark.parametrize("edge_norm", EDGE_NORMS)
def test_edges_equal_an_independent_computation(edge_norm, order):
    m = _model(0)
    net = _build(m, order)
    e = unit_edges(net, edge_norm=edge_norm)
    names = net.unit_names()
    got = {(names[s], names[d], t): w for s, d, t, w in zip(e.src, e.dst, e.type_names(), e.weight)}
    want = _reference(m, edge_norm, order)
    assert len(got) == e.n_edges                                  # no duplicate edges
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-9)
    assert ("c1:3", "g:3", "conv") not in got                    # a zero kernel slice is no edge
    if order == "CHW":                                            # fc.weight[:, :16] = 0: channel t:0 unread
        assert not any(k[0] == "t:0" for k in got)
    assert (e.nnz >= 1).all()


def test_gain_attribute_and_summary():
    m = _model(1)
    net = _build(m, "CHW")
    np.testing.assert_allclose(net.group("add").gain, np.abs(_bn_scale(m.bn_add)))
    np.testing.assert_array_equal(net.group("c1").gain, np.ones(4))          # read raw by the concat too
    s = net.summary()
    assert s["n_groups"] == 7 and s["n_units"] == 3 + 4 + 6 + 6 + 6 + 4 + 5
    assert s["edges_by_type"]["identity"] == 12 and sum(s["edges_by_type"].values()) == s["n_edges"]
    assert {g["name"]: g["kind"] for g in s["groups"]}["add"] == "merge"
    assert not s["is_chain"]


def test_gain_folded_when_every_consumer_reads_through_bn():
    """conv -> BN -> conv: |s| multiplies the conv's incoming edges, not its outgoing ones."""
    rng = np.random.default_rng(0)
    w1, w2, s = rng.normal(size=(2, 1, 1, 1)), rng.normal(size=(1, 2, 1, 1)), np.array([-2.0, 0.5])
    b = DagBuilder()
    x = b.input("x", channels=1, spatial=(2, 2))
    net = b.build(outputs=[b.conv("c2", b.affine(b.conv("c1", x, w1), s), w2)])
    e = unit_edges(net)
    np.testing.assert_allclose(e.weight, np.concatenate([np.abs(w1.ravel()) * [2.0, 0.5], np.abs(w2.ravel())]))
    np.testing.assert_allclose(net.group("c1").gain, [2.0, 0.5])
