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
