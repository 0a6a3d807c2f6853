"""Lesions of DagNetworks: silenced channels against the same lesion made by zeroing weights (or
masking an Add) in the ONNX file and running ONNX Runtime; importance on a planted residual DAG;
``modgraph analyze --method sculpting|subfunctions`` on a residual ONNX export."""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from modgraph.cli import main
from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.errors import ModgraphError
from modgraph.io import load
from modgraph.lesion import importance, lesion_accuracy
from modgraph.testing import random_network

sys.path.insert(0, str(Path(__file__).parent))
from test_dag_methods import residual_concat  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=UserWarning)


class ResConcat(nn.Module):
    """Conv+BN (fused by the exporter), a residual Add, a channel Concat of depths 3 and 1, GAP,
    Linear. With ``planted`` every weight joins channels of one of two modules only."""

    def __init__(self, planted=False):
        super().__init__()
        self.c0, self.bn0 = nn.Conv2d(4, 8, 3, padding=1, groups=2 if planted else 1), nn.BatchNorm2d(8)
        self.c1 = nn.Conv2d(8, 8, 3, padding=1, groups=2 if planted else 1)
        self.c2, self.fc = nn.Conv2d(16, 4, 1), nn.Linear(4, 4)
        if planted:                                   # concat channels: r0..7, h0..7; module m = r, h of 4m..4m+3
            mask = np.zeros((4, 16, 1, 1), np.float32)
            mask[:2, np.r_[0:4, 8:12]], mask[2:, np.r_[4:8, 12:16]] = 1, 1
            with torch.no_grad():
                self.c2.weight.mul_(torch.from_numpy(mask))
                self.fc.weight.mul_(torch.from_numpy(np.kron(np.eye(2), np.ones((2, 2))).astype(np.float32)))

    def forward(self, x):
        h = torch.relu(self.bn0(self.c0(x)))
        r = torch.relu(self.c1(h) + h)
        h = torch.relu(self.c2(torch.cat([r, h], 1)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


def _export(path, planted=False, seed=0):
    torch.manual_seed(seed)
    m = ResConcat(planted).eval()
    with torch.no_grad():
        m.bn0.running_mean.uniform_(-0.5, 0.5)
        m.bn0.running_var.uniform_(0.5, 2.0)
    torch.onnx.export(m, (torch.randn(1, 4, 6, 6),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    return path


def _ort(model, x):
    sess = ort.InferenceSession(model.SerializeToString())
    return sess.run(None, {"x": x.astype(np.float32)})[0].astype(np.float64)


def _zero_conv_channels(model, node_name, channels):
    """The ONNX model with the output channels of one Conv node zeroed: weight rows and bias."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    node = next(n for n in m.graph.node if n.name == node_name)
    for init in m.graph.initializer:
        if init.name in node.input[1:]:
            a = numpy_helper.to_array(init).copy()
            a[channels] = 0
            init.CopyFrom(numpy_helper.from_array(a, init.name))
    return m


def _mask_after(model, node_name, channels, n_channels):
    """The ONNX model with a Mul by a 0/1 channel mask inserted after node ``node_name``."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    node = next(n for n in m.graph.node if n.name == node_name)
    out, masked = node.output[0], node.output[0] + "_masked"
    keep = np.ones((1, n_channels, 1, 1), np.float32)
    keep[0, channels] = 0
    for n in m.graph.node:
        n.input[:] = [masked if i == out else i for i in n.input]
    m.graph.initializer.append(numpy_helper.from_array(keep, "lesion_mask"))
    at = list(m.graph.node).index(node) + 1
    m.graph.node.insert(at, onnx.helper.make_node("Mul", [out, "lesion_mask"], [masked], name="lesion"))
    return m


def test_silenced_channels_equal_the_lesion_in_onnx_runtime(tmp_path):
    path = _export(tmp_path / "res.onnx")
    net, model = load(path), onnx.load(str(path))
    assert [g.name for g in net.groups] == ["x", "/c0/Conv", "/c1/Conv", "/Add", "/c2/Conv", "/fc/Gemm"]
    x = np.random.default_rng(0).normal(size=(64, 4, 6, 6))
    y = net.forward(x).argmax(axis=1)
    cases = [("/c0/Conv", [1, 5], _zero_conv_channels(model, "/c0/Conv", [1, 5])),      # BN fused into the conv
             ("/c1/Conv", [0, 2, 7], _zero_conv_channels(model, "/c1/Conv", [0, 2, 7])),
             ("/c2/Conv", [3], _zero_conv_channels(model, "/c2/Conv", [3])),
             ("/Add", [2, 3, 6], _mask_after(model, "/Add", [2, 3, 6], 8))]
    for group, channels, oracle in cases:
        ref = _ort(oracle, x)
        got = net.forward(x, silence={group: channels})
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
        assert np.abs(got - net.forward(x)).max() > 1e-3                     # the lesion changed something
        assert lesion_accuracy(net, x, y, silence={group: channels}) == float((ref.argmax(1) == y).mean())
    both = net.forward(x, silence={"/c1/Conv": [0], 3: [2]})                 # a name and an index
    np.testing.assert_allclose(both, _ort(_mask_after(_zero_conv_channels(model, "/c1/Conv", [0]), "/Add", [2], 8), x),
                               atol=1e-4, rtol=1e-4)
    assert lesion_accuracy(net, x, y) == 1.0


def test_a_chain_dag_silences_by_group_name_as_the_chain_does_by_layer():
    chain = random_network([5, 6, 7, 3], density=0.8, seed=1)
    dag = DagNetwork.from_layered(chain)
    x, y = np.random.default_rng(2).normal(size=(100, 5)), np.random.default_rng(3).integers(0, 3, 100)
    want = lesion_accuracy(chain, x, y, silence={2: [0, 3, 4]})
    assert lesion_accuracy(dag, x, y, silence={2: [0, 3, 4]}) == want
    assert float((dag.forward(x, silence={"layer2": [0, 3, 4]}).argmax(1) == y).mean()) == want
    assert np.array_equal(dag.forward(x, silence={}), chain.forward(x))


def test_importance_of_the_planted_modules_of_a_residual_concat_dag():
    net, truth = residual_concat(seed=0)
    x = np.random.default_rng(1).normal(size=(120, 4, 5, 5))
    y = net.forward(x).argmax(axis=1)
    labels = truth.copy()
    labels[:4], labels[-4:] = -1, -1
    r = importance(net, labels, x, y, n_random=6, seed=2)
    assert r["base_accuracy"] == 1.0 and r == importance(net, labels, x, y, n_random=6, seed=2)
    assert [(m["group"], m["layer"], m["label"], m["size"]) for m in r["modules"]] == [
        (g, d, c, 5) for g, d in (("a", 1), ("b", 2), ("add", 3), ("p", 4), ("q", 5)) for c in (0, 1)]
    offsets = {g.name: int(o) for g, o in zip(net.groups, net.unit_offsets)}
    for m in r["modules"]:                           # each record is the lesion of its module's channels
        units = np.flatnonzero(truth[offsets[m["group"]]:][:5 * 2] == m["label"])
        assert m["accuracy"] == lesion_accuracy(net, x, y, silence={m["group"]: units})
        assert m["diff"] == m["accuracy"] - 1.0 and len(m["per_class_accuracy"]) == 4
    assert min(m["accuracy"] for m in r["modules"]) < 0.9            # silencing a whole module matters
    assert set(r) >= {"fisher_p_mean", "fisher_p_range", "chi2_p_mean"}


def test_dag_lesion_errors_are_clear():
    net, truth = residual_concat()
    x = np.zeros((3, 4, 5, 5))
    with pytest.raises(KeyError, match="silence: no unit group 'nope'; groups: x, a, b, add"):
        lesion_accuracy(net, x, [0, 0, 0], silence={"nope": [0]})
    with pytest.raises(ValueError, match="group 'a' has channels 0..9, got \\[10\\]"):
        net.forward(x, silence={"a": [10]})
    with pytest.raises(ValueError, match="one label per unit of the network \\(58\\)"):
        importance(net, truth[:-1], x, [0, 0, 0])
    b = DagBuilder()
    t = b.input("x", channels=2)
    two = b.build(outputs=[b.dense("y1", t, np.eye(2)), b.dense("y2", t, np.eye(2))])
    with pytest.raises(ModgraphError, match="one output tensor; this network has 2"):
        lesion_accuracy(two, np.eye(2), [0, 1])


@pytest.mark.parametrize("method", ["sculpting", "subfunctions"])
def test_cli_analyze_of_a_residual_onnx_export(tmp_path, capsys, method):
    path = _export(tmp_path / "res.onnx", planted=True)
    assert main(["analyze", str(path), "--method", method, "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert f"method {method}" in text and "2 modules" in text
    d = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert d["partition"]["method"] == method and d["partition"]["n_modules"] == 2
    inputs = sorted(m["input_support"] for m in d["dag"]["modules"] if m["input_support"])
    assert inputs == [["x:0", "x:1"], ["x:2", "x:3"]]
