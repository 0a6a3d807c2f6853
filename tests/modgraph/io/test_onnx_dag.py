"""ONNX DAG reader: CNNs exported by PyTorch (both exporters) against ONNX Runtime, and typed
unit edges against a plain loop over the torch weight tensors."""
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from modgraph.dag import DagNetwork
from modgraph.dag_edges import EDGE_TYPES
from modgraph.io import load
from modgraph.network import LayeredNetwork

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=UserWarning)


def _np(t):
    return t.detach().numpy().astype(np.float64)


def _bn_scale(bn):
    return _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)


def _randomise_bns(m, seed):
    g = torch.Generator().manual_seed(seed)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            with torch.no_grad():
                bn.weight.copy_(torch.rand(bn.num_features, generator=g) * 3 - 1.5)
                bn.bias.copy_(torch.rand(bn.num_features, generator=g) - 0.5)
                bn.running_mean.copy_(torch.rand(bn.num_features, generator=g) - 0.5)
                bn.running_var.copy_(torch.rand(bn.num_features, generator=g) * 1.5 + 0.5)
    return m.eval()


class ResNetish(nn.Module):
    """Conv/BN/ReLU/MaxPool, an identity residual Add, a strided block with a 1x1 shortcut conv
    and a BN after its Add, GAP, flatten -> Linear."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c1, self.bn1 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c3, self.bn3 = nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16)
        self.sc = nn.Conv2d(8, 16, 1, stride=2)
        self.bn_add = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        h = nn.functional.max_pool2d(torch.relu(self.bn0(self.stem(x))), 2)            # (8, 4, 4)
        h = torch.relu(self.bn2(self.c2(torch.relu(self.bn1(self.c1(h))))) + h)
        h = torch.relu(self.bn_add(self.bn3(self.c3(h)) + self.sc(h)))                  # (16, 2, 2)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


class Branchy(nn.Module):
    """Depthwise and grouped (dilated) convs, a channel Concat, AvgPool, a grouped strided
    ConvTranspose, flatten of a 4 x 4 map -> Linear, GELU and SiLU."""

    def __init__(self):
        super().__init__()
        self.c0 = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.gc = nn.Conv2d(8, 12, 3, padding=2, dilation=2, groups=4)
        self.up = nn.ConvTranspose2d(20, 6, 2, stride=2, groups=2)
        self.fc = nn.Linear(6 * 4 * 4, 4)

    def forward(self, x):
        h = nn.functional.gelu(self.c0(x))                                              # (8, 4, 4)
        h = torch.cat([torch.relu(self.dw(h)), nn.functional.silu(self.gc(h))], 1)      # (20, 4, 4)
        h = torch.relu(self.up(nn.functional.avg_pool2d(h, 2)))                         # (6, 4, 4)
        return self.fc(torch.flatten(h, 1))


def _export(m, path, dynamo, shape, external=False):
    x = torch.randn(*shape)
    if dynamo == "unfolded":          # legacy, BN nodes kept (not fused), Identity nodes added
        torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["x"], do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE)
    elif dynamo:
        torch.onnx.export(m, (x,), str(path), dynamo=True, external_data=external, verbose=False)
    else:       # opset 17: GELU comes out in its Erf form
        torch.onnx.export(m, (x,), str(path), dynamo=False, opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "batch"}})
    return path


def _against_ort(path, shape, seed=0):
    net = load(path)
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)      # dynamo fixes the batch
    sess = ort.InferenceSession(str(path))
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(net.forward(x), ref, atol=1e-4, rtol=1e-4)
    return net


# -- the reference: edges from the torch tensors, by module name -----------------------------
def _conv_ref(edges, src, m, name, scale=None):
    w = np.abs(_np(m.weight))
    s = np.ones(w.shape[0]) if scale is None else np.abs(scale)
    o_per, i_per = w.shape[0] // m.groups, w.shape[1]
    for o in range(w.shape[0]):
        for j in range(i_per):
            if w[o, j].any():
                edges[(src[(o // o_per) * i_per + j], (name, o))] = ("conv", w[o, j].sum() * s[o])
    return [(name, o) for o in range(w.shape[0])]


def _conv_t_ref(edges, src, m, name):
    w = np.abs(_np(m.weight))                            # (C, O/g, kh, kw)
    i_per, o_per = w.shape[0] // m.groups, w.shape[1]
    for i in range(w.shape[0]):
        for j in range(o_per):
            if w[i, j].any():
                edges[(src[i], (name, (i // i_per) * o_per + j))] = ("conv", w[i, j].sum())
    return [(name, o) for o in range(o_per * m.groups)]


def _add_ref(edges, srcs, name, scale=None):
    s = np.ones(len(srcs[0])) if scale is None else np.abs(scale)
    for src in srcs:
        for c, u in enumerate(src):
            edges[(u, (name, c))] = ("identity", s[c])
    return [(name, c) for c in range(len(srcs[0]))]


def _fc_ref(edges, src, m, name, spatial):
    w = np.abs(_np(m.weight))
    for j in range(w.shape[0]):
        for c, u in enumerate(src):
            block = w[j, c * spatial:(c + 1) * spatial]
            if block.any():
                edges[(u, (name, j))] = ("dense_from_conv", block.sum())


def _resnetish_ref(m):
    e = {}
    x = [("input", c) for c in range(3)]
    h = _conv_ref(e, x, m.stem, "stem", _bn_scale(m.bn0))
    a = _conv_ref(e, _conv_ref(e, h, m.c1, "c1", _bn_scale(m.bn1)), m.c2, "c2", _bn_scale(m.bn2))
    h = _add_ref(e, [a, h], "add1")
    h = _add_ref(e, [_conv_ref(e, h, m.c3, "c3", _bn_scale(m.bn3)), _conv_ref(e, h, m.sc, "sc")], "add2",
                 _bn_scale(m.bn_add))
    _fc_ref(e, h, m.fc, "fc", 1)
    return e


def _branchy_ref(m):
    e = {}
    h = _conv_ref(e, [("input", c) for c in range(3)], m.c0, "c0")
    h = _conv_ref(e, h, m.dw, "dw") + _conv_ref(e, h, m.gc, "gc")
    _fc_ref(e, _conv_t_ref(e, h, m.up, "up"), m.fc, "fc", 16)
    return e


def _proportional(torch_w, w) -> bool:
    """Same shape and |w| = |torch_w| times one factor per output (BN fused by the exporter)."""
    a, b = np.abs(_np(torch_w)), np.abs(np.asarray(w, np.float64))
    if a.shape != b.shape:
        return False
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    return np.allclose(a * b.sum(1, keepdims=True), b * a.sum(1, keepdims=True), rtol=1e-4, atol=1e-7)


def _labels(net, m, names):
    """Group -> torch module name: weighted groups by their (possibly BN-fused) weights, merges in order."""
    out, merges = {}, iter(n for n in names if n.startswith("add"))
    for g in net.groups:
        if g.kind == "input":
            out[g.name] = "input"
        elif g.op_type == "add":
            out[g.name] = next(merges)
        else:
            hits = [n for n in names if not n.startswith("add") and _proportional(getattr(m, n).weight, g.weight)]
            assert len(hits) == 1, (g.name, hits)
            out[g.name] = hits[0]
    return out


def _net_edges(net, labels):
    e = net.edges()
    unit = [(labels[g.name], k) for g in net.groups for k in range(g.n_units)]
    return {(unit[s], unit[d]): (EDGE_TYPES[t], w) for s, d, t, w in zip(e.src, e.dst, e.type, e.weight)}


def _assert_edges(net, m, ref):
    names = sorted({u[0] for pair in ref for u in pair} - {"input"})
    got = _net_edges(net, _labels(net, m, names))
    assert got.keys() == ref.keys()
    for k, (t, w) in ref.items():
        assert got[k][0] == t and got[k][1] == pytest.approx(w, rel=2e-5), k


@pytest.mark.parametrize("dynamo", [False, True, "unfolded"], ids=["legacy", "dynamo", "legacy-bn-kept"])
def test_resnetish_matches_ort_and_torch_edges(tmp_path, dynamo):
    torch.manual_seed(1)
    m = _randomise_bns(ResNetish(), 2)
    with torch.no_grad():
        m.c2.weight[3, 5] = 0.0                              # a pruned kernel slice: no edge
        m.fc.weight[:, 2] = 0.0
    net = _against_ort(_export(m, tmp_path / "r.onnx", dynamo, (2, 3, 8, 8)), (2, 3, 8, 8))
    assert isinstance(net, DagNetwork) and net.source_format == "onnx"
    ops = [g.op_type for g in net.groups]
    assert ops.count("conv") == 5 and ops.count("add") == 2 and ops[-1] == "dense"
    assert [g.stage for g in net.groups if g.op_type == "add"] == [1, 2]
    _assert_edges(net, m, _resnetish_ref(m))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo-sidecar"])
def test_branchy_matches_ort_and_torch_edges(tmp_path, dynamo):
    torch.manual_seed(3)
    m = Branchy().eval()
    with torch.no_grad():
        m.gc.weight[5, 1] = 0.0
        m.up.weight[7, 2] = 0.0
    path = _export(m, tmp_path / "b.onnx", dynamo, (1, 3, 4, 4), external=dynamo)
    assert (tmp_path / "b.onnx.data").exists() == dynamo
    net = _against_ort(path, (1, 3, 4, 4))
    acts = {(g.op_type, g.params.get("group")): g.activation for g in net.groups}
    assert acts == {("input", None): "identity", ("conv", 1): "gelu", ("conv", 8): "relu", ("conv", 4): "silu",
                    ("conv_transpose", 2): "relu", ("dense", None): "identity"}     # GELU: Erf or Gelu
    _assert_edges(net, m, _branchy_ref(m))


class PoolBN(nn.Module):
    """BatchNormalization after a MaxPool (not fused by either exporter), flatten of 3 x 3 -> Linear."""

    def __init__(self):
        super().__init__()
        self.c, self.bn, self.fc = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.bn(nn.functional.max_pool2d(self.c(x), 2))), 1))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_batch_norm_after_a_pool_is_a_gain_of_the_conv(tmp_path, dynamo):
    torch.manual_seed(5)
    m = _randomise_bns(PoolBN(), 6)
    net = _against_ort(_export(m, tmp_path / "p.onnx", dynamo, (2, 2, 6, 6)), (2, 2, 6, 6))
    assert [s.op for s in net.steps if s.op in ("max_pool", "affine")] == ["max_pool", "affine"]
    e = {}
    _fc_ref(e, _conv_ref(e, [("input", c) for c in range(2)], m.c, "c", _bn_scale(m.bn)), m.fc, "fc", 9)
    _assert_edges(net, m, e)


class MobileBlock(nn.Module):
    """MobileNetV2's inverted residual: 1x1 expand + BN + ReLU6, depthwise 3x3 + BN + ReLU6, 1x1
    project + BN, residual Add; GAP -> Linear."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.exp, self.bn1 = nn.Conv2d(4, 12, 1, bias=False), nn.BatchNorm2d(12)
        self.dw, self.bn2 = nn.Conv2d(12, 12, 3, padding=1, groups=12, bias=False), nn.BatchNorm2d(12)
        self.proj, self.bn3 = nn.Conv2d(12, 4, 1, bias=False), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = nn.functional.relu6(self.bn0(self.stem(x)))
        b = nn.functional.relu6(self.bn2(self.dw(nn.functional.relu6(self.bn1(self.exp(h))))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.bn3(self.proj(b)) + h, 1), 1))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_mobilenet_block_with_relu6(tmp_path, dynamo):
    torch.manual_seed(7)
    m = _randomise_bns(MobileBlock(), 8)
    net = _against_ort(_export(m, tmp_path / "mb.onnx", dynamo, (2, 3, 6, 6)), (2, 3, 6, 6))
    assert [g.activation for g in net.groups if g.op_type == "conv"].count("relu6") == 3
    e = {}
    h = _conv_ref(e, [("input", c) for c in range(3)], m.stem, "stem", _bn_scale(m.bn0))
    b = _conv_ref(e, _conv_ref(e, h, m.exp, "exp", _bn_scale(m.bn1)), m.dw, "dw", _bn_scale(m.bn2))
    _fc_ref(e, _add_ref(e, [_conv_ref(e, b, m.proj, "proj", _bn_scale(m.bn3)), h], "add"), m.fc, "fc", 1)
    _assert_edges(net, m, e)


def test_mlp_chain_still_reads_as_layered_network(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    torch.onnx.export(m, (torch.randn(2, 4),), str(tmp_path / "m.onnx"), dynamo=False, input_names=["x"])
    assert isinstance(load(tmp_path / "m.onnx"), LayeredNetwork)


def test_info_prints_groups_and_edges_by_type(tmp_path, capsys):
    from modgraph.cli import main
    torch.manual_seed(1)
    _export(_randomise_bns(ResNetish(), 2), tmp_path / "r.onnx", False, (2, 3, 8, 8))
    assert main(["info", str(tmp_path / "r.onnx")]) == 0
    out = capsys.readouterr().out
    assert "9 unit groups, 88 units" in out and "identity 48" in out and "/c3/Conv" in out and "[onnx]" in out
