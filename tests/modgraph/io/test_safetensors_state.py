"""safetensors (our header parser) and state dicts of conv chains: what was assumed is said on every load,
forward = PyTorch where the assumed geometry holds, edges = the kernels, refusals point to ONNX."""
import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from modgraph.dag import DagNetwork
from modgraph.errors import AssumptionWarning, FormatError
from modgraph.io import load, read_safetensors
from modgraph.network import LayeredNetwork

_EXPORT = r'torch\.onnx\.export\(model, torch\.randn\(1, C, H, W\), "model\.onnx", dynamo=False\)'


def _save_st(state, path):
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return path


def _mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4), torch.nn.ReLU(),
                               torch.nn.Linear(4, 3))


def test_safetensors_mlp_equals_the_state_dict_and_says_what_it_assumed(tmp_path):
    m = _mlp(0)
    torch.save(m.state_dict(), tmp_path / "m.pt")
    with pytest.warns(AssumptionWarning, match=r"m\.safetensors: no topology stored; assumed layer order = the "
                      r"header's keys in natural order .*; activations relu between layers, identity after the last"):
        net = load(_save_st(m.state_dict(), tmp_path / "m.safetensors"))
    with pytest.warns(AssumptionWarning, match=r"m\.pt: no topology stored; assumed layer order = key order"):
        ref = load(tmp_path / "m.pt")
    assert isinstance(net, LayeredNetwork) and net.source_format == "safetensors" and net.widths == (6, 5, 4, 3)
    assert [l.activation for l in net.layers] == ["relu", "relu", "identity"]
    assert net.metadata["assumed"][0].startswith("layer order = the header's keys in natural order")
    assert ref.metadata["assumed"][1] == net.metadata["assumed"][1]
    x = torch.randn(7, 6)
    np.testing.assert_allclose(net.forward(x.numpy()), m(x).detach().numpy(), atol=1e-6)
    for a, b in zip(net.layers, ref.layers):
        np.testing.assert_array_equal(a.dense(), b.dense())
    with pytest.warns(AssumptionWarning, match=r"activations as given: tanh, tanh, sigmoid"):
        given = read_safetensors(tmp_path / "m.safetensors", activations=["tanh", "tanh", "sigmoid"])
    assert [l.activation for l in given.layers] == ["tanh", "tanh", "sigmoid"]


def test_twelve_layers_sort_as_numbers_and_bf16_f16_are_upcast(tmp_path):
    torch.manual_seed(1)
    m = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(12)])
    state = m.state_dict()
    state["0.weight"] = state["0.weight"].to(torch.bfloat16)
    state["11.weight"] = state["11.weight"].half()
    with pytest.warns(AssumptionWarning):
        net = load(_save_st(state, tmp_path / "deep.safetensors"))
    assert net.metadata["torch"]["layers"] == [str(i) for i in range(12)]          # 2 before 10
    np.testing.assert_array_equal(net.layers[0].dense(), state["0.weight"].float().numpy())
    np.testing.assert_array_equal(net.layers[11].dense(), state["11.weight"].float().numpy())
    assert net.layers[0].weight.dtype == np.float32


class _CNN(torch.nn.Module):
    """The chain a state dict can show: conv-BN-relu-conv(grouped)-relu-flatten-linear, 'same' padding, stride 1."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.c2 = torch.nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.fc = torch.nn.Linear(6 * 5 * 5, 3)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.bn1(self.c1(x)))))
        return self.fc(x.flatten(1))


def _cnn(seed):
    torch.manual_seed(seed)
    m = _CNN().eval()
    with torch.no_grad():
        m.bn1.running_mean.normal_()
        m.bn1.running_var.uniform_(0.5, 2.0)
        m.bn1.weight.uniform_(0.5, 2.0)
        m.c2.weight[m.c2.weight.abs() < 0.05] = 0.0              # pruned entries
    return m


@pytest.mark.parametrize("fmt", ["pt", "safetensors"])
def test_conv_chain_matches_torch_and_marks_every_assumption(tmp_path, fmt):
    m = _cnn(2)
    path = tmp_path / f"cnn.{fmt}"
    if fmt == "pt":
        torch.save(m.state_dict(), path)
    else:
        _save_st(m.state_dict(), path)
    with pytest.warns(AssumptionWarning, match=r"conv geometry: stride 1, dilation 1, 'same' padding, no pooling"):
        net = load(path)
    assert isinstance(net, DagNetwork) and [g.name for g in net.groups] == ["input", "c1", "c2", "fc"]
    assert net.group("c2").params["group"] == 2 and net.group("input").shape == (3, 5, 5)
    assert all(g.activation_assumed for g in net.groups[1:])
    assert [g.activation for g in net.groups[1:]] == ["relu", "relu", "identity"]
    assert any("S = in_features of 'fc' / channels of 'c2' = 150 / 6 = 25, laid out as H x W = 5 x 5" in a
               for a in net.metadata["assumed"])
    x = torch.randn(4, 3, 5, 5)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(x.numpy()), m(x).numpy(), atol=1e-5)
    e = net.edges()
    names = net.unit_names()
    found = {(names[s], names[d]): w for s, d, w in zip(e.src, e.dst, e.weight)}
    s1 = (m.bn1.weight / torch.sqrt(m.bn1.running_var + 1e-5)).abs().detach().numpy()
    expected = {}
    w1, w2, wf = (a.detach().numpy() for a in (m.c1.weight, m.c2.weight, m.fc.weight))
    for o in range(4):
        for c in range(3):
            expected[(f"input:{c}", f"c1:{o}")] = np.abs(w1[o, c]).sum() * s1[o]
    for o in range(6):
        for j in range(2):
            if np.count_nonzero(w2[o, j]):
                expected[(f"c1:{(o // 3) * 2 + j}", f"c2:{o}")] = np.abs(w2[o, j]).sum()
    for k in range(3):
        for c in range(6):
            expected[(f"c2:{c}", f"fc:{k}")] = np.abs(wf[k, c * 25:(c + 1) * 25]).sum()        # C, H, W order
    assert set(found) == set(expected)
    for key, w in expected.items():
        assert found[key] == pytest.approx(w, rel=1e-6), key


def test_what_cannot_be_a_chain_is_refused_with_the_onnx_export_call(tmp_path):
    def refused(state, name, pattern):
        torch.save(state, tmp_path / name)
        with pytest.raises(FormatError, match=pattern + ".*" + _EXPORT):
            load(tmp_path / name)

    block = {"conv1.weight": torch.ones(8, 3, 3, 3), "layer1.0.conv1.weight": torch.ones(8, 8, 3, 3),
             "layer1.0.downsample.0.weight": torch.ones(8, 8, 1, 1)}
    refused(block, "res.pt", r"res\.pt: state dict entry 'layer1\.0\.downsample\.0\.weight': expected the weights of a "
            r"chain of layers \(a state dict stores no topology\), found a 'downsample' module")
    shortcut = {"a.weight": torch.ones(8, 3, 3, 3), "b.weight": torch.ones(16, 8, 3, 3),
                "sc.weight": torch.ones(16, 8, 1, 1)}
    refused(shortcut, "sc.pt", r"sc\.pt: state dict layer 'sc': expected a conv reading the 16 channels of the layer "
            r"before it, found weight shape \(16, 8, 1, 1\) \(8 input channels per group, a 1x1 conv: a shortcut")
    bn = {"a.weight": torch.ones(8, 3, 3, 3), "bn.weight": torch.ones(16), "bn.bias": torch.zeros(16),
          "bn.running_mean": torch.zeros(16), "bn.running_var": torch.ones(16), "b.weight": torch.ones(16, 16, 3, 3)}
    refused(bn, "bn.pt", r"bn\.pt: state dict layer 'bn': expected BatchNorm statistics of the width of conv 'a' "
            r"\(8 channels\), found running_mean of shape \(16,\): a BatchNorm between convs of different widths")
    flat = {"a.weight": torch.ones(8, 3, 3, 3), "fc.weight": torch.ones(2, 100)}
    refused(flat, "flat.pt", r"flat\.pt: state dict layer 'fc': expected in_features a multiple of the 8 channels of "
            r"conv 'a' \(C x H x W after a flatten\), found in_features 100, which 8 does not divide")
    mlp = {"a.weight": torch.ones(4, 3), "b.weight": torch.ones(2, 5)}
    refused(mlp, "gap.pt", r"gap\.pt: state dict layer 'b': expected a weight with 4 inputs \(the width of layer 0\), "
            r"found 5 inputs .*the shapes do not chain")


def _st_file(path, header: dict, data: bytes, *, length=None):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def test_hostile_safetensors_headers_are_refused_before_anything_is_allocated(tmp_path):
    f32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    huge = _st_file(tmp_path / "huge.safetensors", {"a": f32}, bytes(8), length=10**12)
    with pytest.raises(FormatError, match=r"huge\.safetensors: header length \(bytes 0-7\): expected a JSON header of "
                       r"at most 100000000 bytes, found 1000000000000 bytes declared"):
        load(huge)
    past = _st_file(tmp_path / "past.safetensors", {"a": f32}, bytes(8), length=5000)
    with pytest.raises(FormatError, match=r"past\.safetensors: header length \(bytes 0-7\): expected a JSON header "
                       r"inside the file \(\d+ bytes after the length\), found 5000 bytes declared"):
        load(past)
    over = _st_file(tmp_path / "over.safetensors", {"a": f32, "b": {**f32, "data_offsets": [4, 12]}}, bytes(12))
    with pytest.raises(FormatError, match=r"over\.safetensors: JSON header tensor 'b' data_offsets: expected a span "
                       r"starting at 8 .*found \[4, 12\]: an overlap with tensor 'a' \(which ends at 8\)"):
        load(over)
    hole = _st_file(tmp_path / "hole.safetensors", {"a": f32, "b": {**f32, "data_offsets": [12, 20]}}, bytes(20))
    with pytest.raises(FormatError, match=r"hole\.safetensors: JSON header tensor 'b' data_offsets: expected a span "
                       r"starting at 8 .*found \[12, 20\]: a hole: bytes \[8, 12\) belong to no tensor"):
        load(hole)
    big = _st_file(tmp_path / "big.safetensors", {"a": {"dtype": "F32", "shape": [10**6, 10**6],
                                                        "data_offsets": [0, 8]}}, bytes(8))
    with pytest.raises(FormatError, match=r"big\.safetensors: JSON header tensor 'a' data_offsets: expected a span of "
                       r"4000000000000 bytes \(shape \[1000000, 1000000\] x F32\), found \[0, 8\] = 8 bytes"):
        load(big)
    tail = _st_file(tmp_path / "tail.safetensors", {"a": f32}, bytes(12))
    with pytest.raises(FormatError, match=r"tail\.safetensors: data buffer: expected exactly the 8 bytes the tensors "
                       r"declare, found 12 bytes \(4 bytes belong to no tensor\)"):
        load(tail)
    f8 = _st_file(tmp_path / "f8.safetensors", {"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}},
                  bytes(2))
    with pytest.raises(FormatError, match=r"f8\.safetensors: JSON header tensor 'a' dtype: expected one of F64, .*"
                       r"found 'F8_E4M3'"):
        load(f8)


def test_cli_info_prints_the_assumptions_and_takes_activations(tmp_path, capsys):
    from modgraph.cli import main
    path = _save_st(_mlp(3).state_dict(), tmp_path / "m.safetensors")
    assert main(["info", str(path), "--activations", "tanh,relu,sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "[safetensors]" in out and "  assumed: activations as given: tanh, relu, sigmoid" in out
    assert "  assumed: layer order = the header's keys in natural order" in out
    assert main(["info", str(path), "--activations", "tanh"]) == 2
    assert "activations: expected 3 names" in capsys.readouterr().err
    m = _cnn(4)
    torch.save(m.state_dict(), tmp_path / "c.pt")
    assert main(["info", str(tmp_path / "c.pt")]) == 0
    out = capsys.readouterr().out
    assert "relu (assumed)" in out and "identity (assumed)" in out and "assumed: conv geometry" in out


def test_assumptions_travel_into_modgraph_hdf5_and_the_analysis_report(tmp_path, capsys):
    from modgraph.cli import main
    from modgraph.io import save
    torch.save(_cnn(5).state_dict(), tmp_path / "c.pt")
    with pytest.warns(AssumptionWarning):
        net = load(tmp_path / "c.pt")
    save(net, tmp_path / "c.h5")
    back = load(tmp_path / "c.h5")
    assert back.metadata["assumed"] == net.metadata["assumed"]
    assert [g.activation_assumed for g in back.groups] == [g.activation_assumed for g in net.groups]
    path = _save_st(_mlp(6).state_dict(), tmp_path / "m.safetensors")
    assert main(["analyze", str(path), "--method", "modularity", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["assumed"][0].startswith("layer order = the header's keys in natural order")
    assert main(["analyze", str(path), "--method", "modularity"]) == 0
    assert "  assumed: activations relu between layers, identity after the last" in capsys.readouterr().out
    assert main(["analyze", str(path), str(path), "--activations", "relu,relu,relu"]) == 2
    assert "--activations is taken with one file and one method" in capsys.readouterr().err


def test_cli_significance_takes_activations_like_analyze(tmp_path, capsys):
    from modgraph.cli import main
    from modgraph.io import save
    path = _save_st(_mlp(7).state_dict(), tmp_path / "m.safetensors")
    out = tmp_path / "sig"
    base = ["significance", str(path), "--method", "modularity", "--shuffles", "2", "--out", str(out)]
    assert main([*base, "--activations", "tanh,relu,sigmoid"]) == 0
    text = capsys.readouterr().out
    assert "assumed: activations as given: tanh, relu, sigmoid" in text and "p  " in text
    assert json.loads((out / "m-modularity-layer.json").read_text())["n_shuffles"] == 2
    assert main(base) == 0                                   # not given: assumed, and said so
    assert "assumed: activations relu between layers, identity after the last" in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    bad = ["significance", str(path), "--method", "modularity", "--shuffles", "2", "--out", str(fresh)]
    assert main([*bad, "--activations", "tanh"]) == 2        # one per layer, checked by the reader
    assert "activations: expected 3 names" in capsys.readouterr().err and not fresh.exists()
    assert main([*bad, "--activations", "relu,swish,relu"]) == 2     # names checked before anything is read
    assert "--activations: expected comma-separated names from elu, gelu" in capsys.readouterr().err
    with pytest.warns(AssumptionWarning):
        save(load(tmp_path / "m.safetensors", activations=["relu", "relu", "identity"]), tmp_path / "m.h5")
    assert main(["significance", str(tmp_path / "m.h5"), "--activations", "relu,relu,relu", "--out", str(fresh)]) == 2
    assert "activations can be given only for files that store none" in capsys.readouterr().err
