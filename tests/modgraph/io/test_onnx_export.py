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


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("act", ["gelu", "silu", "relu6"])
def test_gelu_silu_relu6_read_back_as_the_same_chain_with_its_metadata(tmp_path, act, sparse):
    import warnings

    from modgraph.graph import build_unit_graph
    from modgraph.io import load
    net = _net([6, 9, 7, 3], [act, "tanh", act], seed=8)
    net = LayeredNetwork([Layer(l.weight, l.bias, activation=l.activation, alpha=l.alpha,
                                unit_names=tuple(f"L{i}u{j}" for j in range(l.n_out))) for i, l in enumerate(net.layers)],
                         metadata=net.metadata, input_names=net.input_names)
    path = tmp_path / "net.onnx"
    export_onnx(net, path, dtype="float64", sparse=sparse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                 # nothing assumed
        back = load(path)
    # read by the DAG reader (the composites branch), handed back as the chain it was, with what it carried
    assert isinstance(back, LayeredNetwork)
    assert back.metadata == net.metadata and back.input_names == net.input_names
    assert [l.activation for l in back.layers] == [act, "tanh", act]
    assert [l.unit_names for l in back.layers] == [l.unit_names for l in net.layers]
    for mine, theirs in zip(net.layers, back.layers):
        np.testing.assert_array_equal(theirs.weight.toarray(), mine.weight.toarray())
        np.testing.assert_array_equal(theirs.bias, mine.bias)
    x = 4 * np.random.default_rng(9).normal(size=(16, 6))
    np.testing.assert_allclose(back.forward(x), net.forward(x), atol=1e-12)
    g, h = build_unit_graph(net), build_unit_graph(back)
    nonzero = sum(int((l.weight.toarray() != 0).sum()) for l in net.layers)
    assert g.n_units == h.n_units and nonzero == g.n_edges - 3 and nonzero < 6 * 9 + 9 * 7 + 7 * 3
    # a sparse export stores every kept weight, the three exactly-0 ones too; a dense one cannot tell them apart
    assert h.n_edges == (g.n_edges if sparse else nonzero)
    if sparse:
        assert [l.weight.nnz for l in back.layers] == [l.weight.nnz for l in net.layers]


def test_a_large_pruned_gelu_layer_exported_sparse_loads_with_its_few_edges(tmp_path):
    from modgraph.io import load
    rng = np.random.default_rng(3)
    rows, cols = rng.choice(4096, 40, replace=False), rng.choice(4096, 40, replace=False)
    w = np.zeros((4096, 4096))
    w[rows, cols] = rng.normal(size=40)
    w[rows[0], cols[0]] = 0.0                                           # kept, exactly 0
    mask = w != 0
    mask[rows[0], cols[0]] = True
    net = LayeredNetwork([Layer.from_dense(w, np.zeros(4096), activation="gelu", mask=mask),
                          Layer.from_dense(np.ones((1, 4096)), np.zeros(1), activation="sigmoid")])
    path = tmp_path / "big.onnx"
    export_onnx(net, path, sparse=True)
    assert path.stat().st_size < 200_000                                # not 64 MiB of zeros
    back = load(path)
    assert isinstance(back, LayeredNetwork) and back.layers[0].weight.nnz == 40
    np.testing.assert_array_equal(back.layers[0].weight.toarray(), w.astype(np.float32))


def test_a_third_party_residual_mlp_with_a_sparse_initializer_keeps_its_stored_entries(tmp_path):
    """Not a modgraph export (no metadata_props) and not a chain: a DagNetwork whose dense group keeps
    the CSR of the sparse initializer (its explicit 0 too); edges and forward as the dense equivalent."""
    from onnx import TensorProto, helper, numpy_helper

    from modgraph.dag import DagNetwork
    from modgraph.graph import build_unit_graph
    from modgraph.io import load, save
    w1 = np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 3.0], [0.5, 0.0, 0.0]], np.float32)      # (in, out)
    idx = np.array([[0, 0], [0, 2], [1, 2], [2, 0], [1, 1]], np.int64)                 # (1, 1) stored, = 0
    vals = np.array([w1[i, j] for i, j in idx], np.float32)
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(vals, "W1"), numpy_helper.from_array(idx, "W1_idx"),
                                       [3, 3])
    w2 = numpy_helper.from_array(np.array([[1.0], [2.0], [-1.0]], np.float32), "W2")
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]), helper.make_node("Gelu", ["h"], ["a"]),
             helper.make_node("Add", ["a", "x"], ["r"]), helper.make_node("MatMul", ["r", "W2"], ["y"])]
    g = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], initializer=[w2],
                          sparse_initializer=[sparse])
    path = tmp_path / "res.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)]), path)
    net = load(path)
    assert isinstance(net, DagNetwork) and not net.is_chain
    dense = net.groups[1]
    assert dense.op_type == "dense" and dense.weight.nnz == 5
    np.testing.assert_array_equal(dense.weight.toarray(), w1.T)
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _ort_named(path, x), atol=1e-5)
    # the same graph with a dense initializer: the same edges but the stored 0
    dense_path = tmp_path / "dense.onnx"
    g2 = helper.make_graph(nodes, "res", list(g.input), list(g.output),
                           initializer=[numpy_helper.from_array(w1, "W1"), w2])
    onnx.save(helper.make_model(g2, opset_imports=[helper.make_opsetid("", 20)]), dense_path)
    a, b = build_unit_graph(net), build_unit_graph(load(dense_path))
    assert a.n_edges == b.n_edges + 1
    save(net, tmp_path / "res.h5")                                      # format 2.0 writes it dense
    np.testing.assert_allclose(load(tmp_path / "res.h5").forward(x), net.forward(x), atol=1e-6)


def _ort_named(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]
