"""export_onnx: ONNX Runtime runs what we write and computes what LayeredNetwork.forward computes."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from modgraph.io import export_onnx
from modgraph.network import Layer, LayeredNetwork

ACTS = ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "identity", "softmax", "log_softmax"]


def _net(widths, acts, *, seed):
    rng = np.random.default_rng(seed)
    layers = []
    for (n_in, n_out), act in zip(zip(widths[:-1], widths[1:]), acts):
        mask = rng.random((n_out, n_in)) < 0.6
        w = rng.normal(size=(n_out, n_in)) * mask
        w[np.argwhere(mask)[0][0], np.argwhere(mask)[0][1]] = 0.0       # a kept edge that is exactly 0
        layers.append(Layer.from_dense(w, rng.normal(size=n_out), activation=act, mask=mask, alpha=0.3))
    return LayeredNetwork(layers, metadata={"task": "xor", "seed": seed},
                          input_names=[f"x{i}" for i in range(widths[0])])


def _ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


@pytest.mark.parametrize("sparse", [False, True])
def test_onnx_runtime_matches_forward_for_every_activation(tmp_path, sparse):
    net = _net([6, 9, 8, 7, 9, 5, 6, 7, 4], ACTS, seed=1)
    path = tmp_path / "net.onnx"
    export_onnx(net, path, sparse=sparse)
    onnx.checker.check_model(onnx.load(path))
    x = np.random.default_rng(2).normal(size=(16, 6)).astype(np.float32)
    np.testing.assert_allclose(_ort(path, x), net.forward(x), atol=1e-5, rtol=1e-5)


def test_float64_export_runs_in_double(tmp_path):
    net = _net([5, 7, 3], ["tanh", "softmax"], seed=3)
    path = tmp_path / "net.onnx"
    export_onnx(net, path, dtype="float64")
    x = np.random.default_rng(4).normal(size=(8, 5))
    y = _ort(path, x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, net.forward(x), atol=1e-12)


def test_graph_is_a_plain_gemm_chain_with_metadata(tmp_path):
    net = _net([4, 3, 2], ["relu", "identity"], seed=5)
    path = tmp_path / "net.onnx"
    export_onnx(net, path)
    model = onnx.load(path)
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Gemm"]
    assert all(a.i == 1 for n in model.graph.node if n.op_type == "Gemm" for a in n.attribute if a.name == "transB")
    props = {p.key: p.value for p in model.metadata_props}
    assert props["modgraph.metadata"] == '{"seed": 5, "task": "xor"}'
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["output"]


def test_failed_export_leaves_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "net.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(ValueError, match=r"unknown dtype 'float16'; choose one of float32, float64"):
        export_onnx(_net([3, 2], ["relu"], seed=0), path, dtype="float16")

    def half_then_fail(self, data):          # the disk fills up half-way through the write
        with open(self, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(type(path), "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        export_onnx(_net([3, 2], ["relu"], seed=0), path)
    assert path.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]


COMPOSITE = ["gelu", "silu", "relu6", "relu", "gelu", "identity"]     # each also after another composite


@pytest.mark.parametrize("sparse", [False, True])
def test_gelu_silu_relu6_run_in_onnx_runtime_as_forward_computes(tmp_path, sparse):
    net = _net([5, 8, 7, 9, 6, 8, 4], COMPOSITE, seed=6)
    path = tmp_path / "net.onnx"
    export_onnx(net, path, sparse=sparse)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops[:7] == ["Gemm", "Div", "Erf", "Add", "Mul", "Mul", "Gemm"] and ops[7:10] == ["Sigmoid", "Mul", "Gemm"]
    assert ops[10] == "Clip" and "Gelu" not in ops
    x = 3 * np.random.default_rng(7).normal(size=(32, 5)).astype(np.float32)    # past relu6's 6 too
    np.testing.assert_allclose(_ort(path, x), net.forward(x), atol=1e-5, rtol=1e-5)


def test_silu_relu6_run_in_double_and_gelu_needs_float32_there(tmp_path):
    net = _net([5, 8, 7, 4], ["silu", "relu6", "sigmoid"], seed=10)
    path = tmp_path / "net.onnx"
    export_onnx(net, path, dtype="float64")
    x = 3 * np.random.default_rng(11).normal(size=(16, 5))
    y = _ort(path, x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, net.forward(x), atol=1e-12)
    export_onnx(_net([5, 3], ["gelu"], seed=12), path, dtype="float64")
    onnx.checker.check_model(onnx.load(path))                       # valid ONNX; modgraph reads it (below)
    with pytest.raises(Exception, match=r"Could not find an implementation for Erf"):   # ORT: no double Erf
        _ort(path, x)


@pytest.mark.parametrize("act", ["gelu", "silu", "relu6"])
def test_gelu_silu_relu6_read_back_as_the_same_activation(tmp_path, act):
    import warnings

    from modgraph.dag import DagNetwork
    from modgraph.graph import build_unit_graph
    from modgraph.io import load
    net = _net([6, 9, 7, 3], [act, "tanh", act], seed=8)
    path = tmp_path / "net.onnx"
    export_onnx(net, path, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                 # nothing assumed
        back = load(path)
    assert isinstance(back, DagNetwork) and back.is_chain          # through the DAG reader (a non-chain op)
    dense = [g for g in back.groups if g.op_type == "dense"]
    assert [g.activation for g in dense] == [act, "tanh", act] and not any(g.activation_assumed for g in dense)
    chain = back.to_layered()
    assert [l.activation for l in chain.layers] == [act, "tanh", act]
    for mine, theirs in zip(net.layers, chain.layers):
        np.testing.assert_array_equal(theirs.weight.toarray(), mine.weight.toarray())
        np.testing.assert_array_equal(theirs.bias, mine.bias)
    x = 4 * np.random.default_rng(9).normal(size=(16, 6))
    np.testing.assert_allclose(back.forward(x), net.forward(x), atol=1e-12)
    g, h = build_unit_graph(net), build_unit_graph(chain)
    # the edges: every non-zero weight (the DAG reader, like a dense export, keeps no weight that is exactly 0)
    nonzero = sum(int((l.weight.toarray() != 0).sum()) for l in net.layers)
    assert g.n_units == h.n_units and h.n_edges == nonzero == g.n_edges - 3 and nonzero < 6 * 9 + 9 * 7 + 7 * 3
