"""One small CNN (conv-BN-relu-pool-conv-relu-flatten-dense) from PyTorch, its weights copied into the
equivalent Keras model, exported as Keras .h5 and .keras, a state dict, safetensors and modgraph HDF5: the
same unit graph from every file (unit names, typed edges, weights to 1e-6). The state dict and safetensors
hold the BN statistics, so their BN gains are folded like Keras'; they store no pooling, so only their
unit graphs (not their forward passes) can equal the others'.

The same torch model through both ONNX exporters (``dynamo=False`` and ``dynamo=True``) gives the same
unit graph too, compared honestly: ONNX group names are the exporters' node names (not the module paths
or Keras layer names), so units are matched by (group index in order, channel) and the names are only
checked to be what each exporter calls its nodes (legacy: ``/c1/Conv``, ``/c2/Conv``, ``/fc/Gemm``;
dynamo: ``node_...`` names and the input named after ``forward``'s argument); the edges, their types
and weights (1e-6) are equal."""
import os
import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

os.environ["KERAS_BACKEND"] = "torch"
import keras  # noqa: E402

from modgraph.dag import DagNetwork  # noqa: E402
from modgraph.errors import AssumptionWarning  # noqa: E402
from modgraph.io import load, save  # noqa: E402


class _CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.c2 = torch.nn.Conv2d(4, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.bn1(self.c1(x))), 2)
        return self.fc(torch.relu(self.c2(x)).flatten(1))


def _torch_model(seed):
    torch.manual_seed(seed)
    m = _CNN().eval()
    with torch.no_grad():
        m.bn1.running_mean.normal_()
        m.bn1.running_var.uniform_(0.5, 2.0)
        m.bn1.weight.uniform_(0.5, 2.0)
        m.bn1.bias.normal_()
        m.c2.weight[m.c2.weight.abs() < 0.04] = 0.0           # pruned: fewer edges
    return m


def _keras_model(m):
    L = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 3), name="input"), L.Conv2D(4, 3, padding="same", name="c1"),
                              L.BatchNormalization(epsilon=1e-5, name="bn1"), L.ReLU(name="r1"),
                              L.MaxPooling2D(2, name="pool"), L.Conv2D(6, 3, padding="same", activation="relu",
                                                                       name="c2"),
                              L.Flatten(name="flat"), L.Dense(5, name="fc")])
    t = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    conv = lambda w: w.transpose(2, 3, 1, 0)                            # noqa: E731  (O, I, kh, kw) -> (kh, kw, I, O)
    fc = t["fc.weight"].reshape(5, 6, 4, 4).transpose(2, 3, 1, 0).reshape(96, 5)     # C,H,W -> H,W,C features
    model.get_layer("c1").set_weights([conv(t["c1.weight"]), t["c1.bias"]])
    model.get_layer("bn1").set_weights([t["bn1.weight"], t["bn1.bias"], t["bn1.running_mean"], t["bn1.running_var"]])
    model.get_layer("c2").set_weights([conv(t["c2.weight"]), t["c2.bias"]])
    model.get_layer("fc").set_weights([fc, t["fc.bias"]])
    return model


def _graph(net):
    e = net.edges()
    names = net.unit_names()
    return names, {(names[s], names[d], t): w for s, d, t, w in zip(e.src, e.dst, e.type_names(), e.weight)}


def test_one_cnn_through_five_files_gives_one_unit_graph(tmp_path):
    m = _torch_model(7)
    model = _keras_model(m)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        np.testing.assert_allclose(model.predict(x.numpy().transpose(0, 2, 3, 1), verbose=0), m(x).numpy(), atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp_path / "k.h5")
        model.save(tmp_path / "k.keras")
    torch.save(m.state_dict(), tmp_path / "sd.pt")
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "w.safetensors"))
    nets = {"keras-h5": load(tmp_path / "k.h5"), "keras": load(tmp_path / "k.keras")}
    with pytest.warns(AssumptionWarning):
        nets["torch-state-dict"] = load(tmp_path / "sd.pt")
    with pytest.warns(AssumptionWarning):
        nets["safetensors"] = load(tmp_path / "w.safetensors")
    save(nets["keras"], tmp_path / "m.h5")
    nets["modgraph-hdf5"] = load(tmp_path / "m.h5")
    for fmt in ("keras-h5", "keras", "modgraph-hdf5"):       # the full network: forward = PyTorch
        np.testing.assert_allclose(nets[fmt].forward(x.numpy()), m(x).detach().numpy(), atol=1e-4, err_msg=fmt)
    ref_names, ref = _graph(nets["keras"])
    assert ref_names[:3] == ["input:0", "input:1", "input:2"] and len(ref_names) == 3 + 4 + 6 + 5
    assert {t for _, _, t in ref} == {"conv", "dense_from_conv"}
    for fmt, net in nets.items():
        assert isinstance(net, DagNetwork) and net.source_format == fmt
        assert [g.name for g in net.groups] == ["input", "c1", "c2", "fc"], fmt
        assert [g.activation for g in net.groups[1:]] == ["relu", "relu", "identity"], fmt
        names, graph = _graph(net)
        assert names == ref_names, fmt
        assert set(graph) == set(ref), fmt
        for key, w in ref.items():
            assert graph[key] == pytest.approx(w, rel=1e-6, abs=1e-12), (fmt, key)
    assert not any(g.activation_assumed for g in nets["keras"].groups)
    assert all(g.activation_assumed for g in nets["safetensors"].groups[1:])


def _indexed(net):
    """The unit graph keyed by ((group index, channel), (group index, channel), type): names left out."""
    index = {g.name: i for i, g in enumerate(net.groups)}
    keys = []
    for name in net.unit_names():
        group, k = name.rsplit(":", 1)
        keys.append((index[group], int(k)))
    e = net.edges()
    return keys, {(keys[s], keys[d], t): w for s, d, t, w in zip(e.src, e.dst, e.type_names(), e.weight)}


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_the_cnn_through_both_onnx_exporters_gives_the_same_unit_graph(tmp_path, dynamo):
    m = _torch_model(7)
    model = _keras_model(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp_path / "k.keras")
        path = tmp_path / "m.onnx"
        x = torch.randn(2, 3, 8, 8)
        if dynamo:
            torch.onnx.export(m, (x,), str(path), dynamo=True, external_data=False, verbose=False)
        else:
            torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["input"],
                              dynamic_axes={"input": {0: "batch"}})
    ref = load(tmp_path / "k.keras")
    net = load(path)
    assert isinstance(net, DagNetwork) and net.source_format == "onnx"
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(x.numpy()), m(x).numpy(), atol=1e-4)
    names = [g.name for g in net.groups]
    assert len(names) == 4 and [g.n_units for g in net.groups] == [3, 4, 6, 5]
    assert [g.activation for g in net.groups[1:]] == ["relu", "relu", "identity"]
    if dynamo:     # the naming difference: node names of the exporter, e.g. node_Conv_12, node_conv2d_1, node_linear
        assert names[0] == "x" and all(n.startswith("node_") for n in names[1:]), names
    else:
        assert names == ["input", "/c1/Conv", "/c2/Conv", "/fc/Gemm"]
    ref_keys, ref_graph = _indexed(ref)
    keys, graph = _indexed(net)
    assert keys == ref_keys
    assert set(graph) == set(ref_graph)
    for key, w in ref_graph.items():
        assert graph[key] == pytest.approx(w, rel=1e-6, abs=1e-12), key
