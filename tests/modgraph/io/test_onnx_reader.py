"""ONNX reader: oracle tests against PyTorch (both exporters), skl2onnx and ONNX Runtime."""
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch.nn.utils import prune

from modgraph.errors import FormatError, UnsupportedOpError
from modgraph.io import export_onnx, load, read_onnx
from modgraph.io.onnx import SUPPORTED_OPS
from modgraph.io.onnx_dag import DAG_SUPPORTED_OPS

warnings.filterwarnings("ignore", category=DeprecationWarning)


def _torch_mlp(*, bias: bool, seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    m = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(12, 9, bias=bias), torch.nn.ReLU(),
        torch.nn.Linear(9, 7, bias=bias), torch.nn.BatchNorm1d(7), torch.nn.Tanh(), torch.nn.Dropout(0.3),
        torch.nn.Linear(7, 6, bias=bias), torch.nn.LeakyReLU(0.2), torch.nn.Linear(6, 4, bias=bias), torch.nn.Softmax(-1))
    prune.l1_unstructured(m[1], "weight", amount=0.6)                 # pruned zeros, mask still attached
    prune.l1_unstructured(m[7], "weight", amount=0.3)
    prune.remove(m[7], "weight")                                      # zeros baked in
    with torch.no_grad():
        m[4].running_mean.uniform_(-1, 1)
        m[4].running_var.uniform_(0.5, 2.0)
    return m.eval()


def _export(m, path, *, dynamo: bool, external_data: bool = False):
    x = torch.randn(32, 3, 4)              # dynamo fixes the batch size to the example's
    if dynamo:       # external_data=True (its default) puts every weight in a sidecar <name>.onnx.data
        torch.onnx.export(m, (x,), str(path), dynamo=True, external_data=external_data, verbose=False)
    else:
        torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return path


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_torch_exports_match_torch_and_onnx_runtime(tmp_path, dynamo, bias):
    m = _torch_mlp(bias=bias, seed=3)
    path = _export(m, tmp_path / "m.onnx", dynamo=dynamo, external_data=bias)
    assert (tmp_path / "m.onnx.data").exists() == (dynamo and bias)
    net = load(path)
    assert net.source_format == "onnx" and net.widths == (12, 9, 7, 6, 4)
    assert [l.activation for l in net.layers] == ["relu", "tanh", "leaky_relu", "softmax"]
    assert net.layers[2].alpha == pytest.approx(0.2)
    x = torch.randn(32, 3, 4)
    flat = x.reshape(32, -1).numpy()
    np.testing.assert_allclose(net.forward(flat), m(x).detach().numpy(), atol=1e-5)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(net.forward(flat), sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0], atol=1e-5)
    mask = m[1].weight_mask.numpy().astype(bool)                   # pruned zeros are not edges
    np.testing.assert_array_equal(net.layers[0].mask, mask & (m[1].weight.detach().numpy() != 0))
    assert net.layers[2].n_edges == int((m[7].weight != 0).sum())


def test_sklearn_classifier_and_regressor_match_sklearn(tmp_path):
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype(np.float32)
    cases = [(MLPClassifier(hidden_layer_sizes=(8, 5), activation="tanh", max_iter=30, random_state=0),
              rng.integers(0, 3, 80), ["tanh", "tanh", "softmax"], {"ArgMax", "ZipMap"}),
             (MLPClassifier(hidden_layer_sizes=(7,), activation="logistic", max_iter=30, random_state=0),
              rng.integers(0, 2, 80), ["sigmoid", "sigmoid"], {"Sub", "Concat"}),
             (MLPRegressor(hidden_layer_sizes=(8, 4), max_iter=30, random_state=0), rng.normal(size=(80, 2)),
              ["relu", "relu", "identity"], set())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, (est, y, acts, heads) in enumerate(cases):
            est.fit(x, y)
            path = tmp_path / f"sk{k}.onnx"
            path.write_bytes(to_onnx(est, x[:1]).SerializeToString())
            net = load(path)
            assert [l.activation for l in net.layers] == acts
            assert set(net.metadata["onnx"]["ignored_head_ops"]) == heads
            ref = est.predict_proba(x) if hasattr(est, "predict_proba") else est.predict(x)
            ref = ref[:, 1:] if len(acts) == 2 else ref                # binary: the network outputs P(class 1)
            np.testing.assert_allclose(net.forward(x), ref, atol=1e-5)
            for layer, coef in zip(net.layers, est.coefs_):             # sklearn stores (in, out)
                np.testing.assert_allclose(layer.dense(), coef.T.astype(np.float32), atol=1e-7)


def _model(nodes, inits, *, in_shape, out_shape=None, sparse=(), opset=17):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, out_shape)],
                              initializer=inits, sparse_initializer=list(sparse))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8                       # onnx 1.23 defaults to IR 14, newer than onnxruntime reads
    return model


def _ort_vs_ours(model, path, x):
    onnx.save(model, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"x": x})[0].reshape(len(x), -1)
    net = read_onnx(path)
    np.testing.assert_allclose(net.forward(x.reshape(len(x), -1)), ref, atol=1e-5)
    return net


def test_image_preprocessing_is_folded_into_the_first_layer(tmp_path):
    rng = np.random.default_rng(1)
    mean = numpy_helper.from_array(rng.normal(size=(3, 1, 1)).astype(np.float32), "mean")
    std = numpy_helper.from_array(rng.uniform(0.5, 2, size=(3, 1, 1)).astype(np.float32), "std")
    w = numpy_helper.from_array(rng.normal(size=(5, 12)).astype(np.float32), "W")         # Gemm, transB=1
    nodes = [helper.make_node("Sub", ["x", "mean"], ["a"]), helper.make_node("Div", ["a", "std"], ["b"]),
             helper.make_node("Mul", ["scale", "b"], ["c"]),                             # constant first
             helper.make_node("Constant", [], ["scale"], value_float=0.5),
             helper.make_node("Flatten", ["c"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "W"], ["y"], transB=1, alpha=2.0)]
    net = _ort_vs_ours(_model(nodes, [mean, std, w], in_shape=[None, 3, 2, 2]), tmp_path / "p.onnx",
                       rng.normal(size=(9, 3, 2, 2)).astype(np.float32))
    assert len(net) == 1 and net.layers[0].activation == "identity"


def test_gemm_attributes_matmul_add_either_order_and_trailing_affine(tmp_path):
    rng = np.random.default_rng(2)
    b_t = numpy_helper.from_array(rng.normal(size=(4, 6)).astype(np.float32), "B")          # transB=0: (in, out)
    c = numpy_helper.from_array(rng.normal(size=(1, 6)).astype(np.float32), "C")
    w2 = numpy_helper.from_array(rng.normal(size=(6, 3)).astype(np.float32), "W2")
    b2 = numpy_helper.from_array(rng.normal(size=(3,)).astype(np.float32), "b2")
    k = numpy_helper.from_array(rng.uniform(1, 2, size=(3,)).astype(np.float32), "k")
    nodes = [helper.make_node("Gemm", ["x", "B", "C"], ["g"], alpha=0.5, beta=3.0),
             helper.make_node("Relu", ["g"], ["r"]), helper.make_node("MatMul", ["r", "W2"], ["m"]),
             helper.make_node("Add", ["b2", "m"], ["a"]), helper.make_node("Mul", ["a", "k"], ["s"]),
             helper.make_node("Sigmoid", ["s"], ["y"])]
    net = _ort_vs_ours(_model(nodes, [b_t, c, w2, b2, k], in_shape=[None, 4]), tmp_path / "g.onnx",
                       rng.normal(size=(7, 4)).astype(np.float32))
    assert [l.activation for l in net.layers] == ["relu", "sigmoid"]


def test_sparse_initializer_and_sparse_constant_keep_their_stored_entries(tmp_path):
    vals = numpy_helper.from_array(np.array([1.5, 0.0, -2.0], np.float32), "W")      # one kept weight is 0.0
    idx = numpy_helper.from_array(np.array([0, 4, 7], np.int64), "W_idx")            # row-major in (out=2, in=4)
    sparse = helper.make_sparse_tensor(vals, idx, [2, 4])
    const = helper.make_sparse_tensor(numpy_helper.from_array(np.array([3.0], np.float32), "V"),
                                      numpy_helper.from_array(np.array([[1, 0]], np.int64), "V_idx"), [2, 1])
    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1), helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Constant", [], ["V"], sparse_value=const), helper.make_node("MatMul", ["t", "V"], ["y"])]
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    net = _ort_vs_ours(_model(nodes, [], in_shape=[None, 4], sparse=[sparse]), tmp_path / "s.onnx", x)
    assert net.layers[0].weight.nnz == 3 and net.layers[0].mask.tolist() == [[True, False, False, False],
                                                                             [True, False, False, True]]
    assert net.layers[1].dense().tolist() == [[0.0, 3.0]]


def test_modgraph_export_round_trip_keeps_metadata_names_and_kept_zeros(tmp_path):
    from modgraph.network import Layer, LayeredNetwork
    w = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, -1.0]])
    mask = np.array([[True, True, False], [True, False, True]])                      # kept weight 0.0 at [0, 0]
    net = LayeredNetwork([Layer.from_dense(w, [0.5, -0.5], mask=mask, activation="elu", alpha=0.7,
                                           unit_names=["a", "b"])], input_names=["p", "q", "r"], metadata={"k": [1]})
    export_onnx(net, tmp_path / "n.onnx", sparse=True, dtype="float64")
    back = load(tmp_path / "n.onnx")
    assert back.metadata == {"k": [1]} and back.input_names == ("p", "q", "r")
    assert back.layers[0].unit_names == ("a", "b") and back.layers[0].alpha == 0.7
    np.testing.assert_array_equal(back.layers[0].mask, mask)
    np.testing.assert_array_equal(back.layers[0].dense(), w)


def test_unsupported_op_names_node_and_op_and_lists_supported(tmp_path):
    """An op neither reader knows: the refusal names the node and op and lists the supported ops
    (Conv is one of them now: the DAG reader reads CNNs, see test_onnx_dag.py)."""
    w = numpy_helper.from_array(np.ones((2, 1, 3), np.float32), "K")
    nodes = [helper.make_node("Einsum", ["x", "K"], ["c"], name="ein1", equation="bi,bij->bj"),
             helper.make_node("Relu", ["c"], ["y"])]
    onnx.save(_model(nodes, [w], in_shape=[None, 1, 8]), tmp_path / "c.onnx")
    with pytest.raises(UnsupportedOpError, match=r"c\.onnx: ONNX graph: expected one of the supported ops "
                       r"\(.*Add, ArgMax, .*Conv.*Gemm.*MatMul.*\), found 1 unsupported op\(s\): node 'ein1' "
                       r"\(Einsum\)$") as info:
        load(tmp_path / "c.onnx")
    assert info.value.supported == DAG_SUPPORTED_OPS and set(SUPPORTED_OPS) < set(DAG_SUPPORTED_OPS)
    assert info.value.nodes == ("node 'ein1' (Einsum)",)


def test_branch_is_read_as_a_dag_that_matches_onnx_runtime(tmp_path):
    """A branch used to be refused by the chain reader; the DAG reader now reads it (merge group)."""
    from modgraph.dag import DagNetwork
    w = numpy_helper.from_array(np.arange(9, dtype=np.float32).reshape(3, 3) - 4, "W")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["a"], name="left"),
             helper.make_node("Relu", ["x"], ["b"], name="right"), helper.make_node("Add", ["a", "b"], ["y"], name="join")]
    onnx.save(_model(nodes, [w], in_shape=[None, 3]), tmp_path / "b.onnx")
    net = load(tmp_path / "b.onnx")
    assert isinstance(net, DagNetwork) and [g.op_type for g in net.groups] == ["input", "dense", "add"]
    x = np.random.default_rng(3).normal(size=(4, 3)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "b.onnx"))
    np.testing.assert_allclose(net.forward(x), sess.run(None, {"x": x})[0], atol=1e-5)


@pytest.mark.parametrize("block_entries", [100, 2**19], ids=["many-blocks", "one-block"])
@pytest.mark.parametrize("density", [1.0, 0.9999, 0.8, 0.3, 0.0])
def test_dense_to_csr_equals_scipy_for_every_layout_and_density(density, block_entries, monkeypatch):
    from scipy import sparse

    from modgraph.io import _chain
    from modgraph.io._chain import dense_to_csr
    monkeypatch.setattr(_chain, "_BLOCK_ENTRIES", block_entries)           # 100: two rows per block
    rng = np.random.default_rng(7)
    w = (rng.normal(size=(1300, 37)) * (rng.random((1300, 37)) < density)).astype(np.float32)
    w[700, 3] = w[1299, 36] = 0.0                         # zeros in some blocks only: in-place shifting
    for arr in (w, np.asfortranarray(w), w.T.copy().T, w.astype(np.float64), (3 * w).astype(np.int32)):
        ref = sparse.csr_matrix(arr)
        got = dense_to_csr(arr.copy())
        np.testing.assert_array_equal(got.indptr, ref.indptr)
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_array_equal(got.data, ref.data)


def test_skeleton_parse_equals_full_parse_without_raw_data(tmp_path):
    from modgraph.io._onnx_skeleton import read_skeleton
    path = _export(_torch_mlp(bias=True, seed=1), tmp_path / "m.onnx", dynamo=False)
    skeleton, ranges = read_skeleton(path)
    full = onnx.load(str(path))
    raw = path.read_bytes()
    assert set(ranges) == {t.name for t in full.graph.initializer if t.HasField("raw_data")}
    for t in full.graph.initializer:
        if t.name in ranges:
            offset, length = ranges[t.name]
            assert raw[offset:offset + length] == t.raw_data
            t.ClearField("raw_data")
    assert onnx.load_model_from_string(skeleton) == full
    assert len(skeleton) <= len(raw) - sum(length for _, length in ranges.values())


def test_float16_dense_and_sparse_weights_widen_to_float32(tmp_path):
    w = np.array([[1.5, 0.0, -2.0], [0.25, 4.0, 0.0]], np.float16)                       # (out, in)
    dense = numpy_helper.from_array(w, "W")
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([2.0, -1.0], np.float16), "V"),
                                       numpy_helper.from_array(np.array([0, 3], np.int64), "V_i"), [2, 2])
    nodes = [helper.make_node("Cast", ["x"], ["c"], to=TensorProto.FLOAT16),
             helper.make_node("Gemm", ["c", "W"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "V"], ["y"])]
    onnx.save(_model(nodes, [dense], in_shape=[None, 3], sparse=[sparse]), tmp_path / "h.onnx")
    net = read_onnx(tmp_path / "h.onnx")
    assert [l.weight.dtype for l in net.layers] == [np.float32, np.float32]
    np.testing.assert_array_equal(net.layers[0].dense(), w.astype(np.float32))
    np.testing.assert_array_equal(net.layers[1].dense(), [[2.0, 0.0], [0.0, -1.0]])
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(net.forward(x), np.maximum(x @ w.T.astype(np.float64), 0) @ [[2.0, 0.0], [0.0, -1.0]])


def test_initializers_listed_as_inputs_and_identity_deduplicated_constants(tmp_path):
    m = _torch_mlp(bias=True, seed=5)
    x = torch.randn(4, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), str(tmp_path / "k.onnx"), dynamo=False, keep_initializers_as_inputs=True,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})
    assert len(onnx.load(tmp_path / "k.onnx").graph.input) > 1                  # weights listed as inputs too
    np.testing.assert_allclose(load(tmp_path / "k.onnx").forward(x.reshape(4, -1).numpy()),
                               m(x).detach().numpy(), atol=1e-5)
    w = numpy_helper.from_array(np.array([[1.0, -1.0], [2.0, 0.5]], np.float32), "W")
    nodes = [helper.make_node("Identity", ["W"], ["W_alias"]), helper.make_node("Identity", ["W_alias"], ["W2"]),
             helper.make_node("Gemm", ["x", "W2"], ["y"], transB=1)]
    net = _ort_vs_ours(_model(nodes, [w], in_shape=[None, 2]), tmp_path / "i.onnx", np.eye(2, dtype=np.float32))
    assert net.layers[0].dense().tolist() == [[1.0, -1.0], [2.0, 0.5]]
