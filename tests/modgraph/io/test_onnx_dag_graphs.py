"""ONNX DAG reader on graphs written with onnx.helper: the tf2onnx NHWC pattern, shape arithmetic
feeding a Pad (metadata, constant-folded), and bad input (clear errors naming file and node)."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from modgraph.errors import FormatError, UnsupportedOpError
from modgraph.io import load


def _init(name, a, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(a, dtype), name)


def _save(path, nodes, inits, in_shape, *, opset=17, out="y"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def _ort(path, x):
    return ort.InferenceSession(str(path)).run(None, {"x": x})[0]


def test_nhwc_tf2onnx_pattern_flattens_in_hwc_order(tmp_path):
    rng = np.random.default_rng(0)
    k, b = rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    w = rng.normal(size=(3 * 3 * 4, 5))                   # MatMul weight (in, out), in = H*W*C (channel fastest)
    w[np.arange(9) * 4 + 2] = 0.0                         # nothing read from channel 2
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2], name="to_nchw"),
             helper.make_node("Conv", ["t", "K", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
             helper.make_node("Transpose", ["p"], ["q"], perm=[0, 2, 3, 1], name="to_nhwc"),
             helper.make_node("Mul", ["q", "bn_s"], ["q1"], name="bn_mul"),       # tf2onnx-style BN, NHWC (C,)
             helper.make_node("Add", ["q1", "bn_t"], ["q2"], name="bn_add"),
             helper.make_node("Reshape", ["q2", "shape"], ["f"], name="flatten"),
             helper.make_node("MatMul", ["f", "W"], ["m"], name="dense"),
             helper.make_node("Add", ["m", "bias"], ["y"], name="dense_bias")]
    inits = [_init("K", k), _init("B", b), _init("W", w), _init("bias", rng.normal(size=5)),
             _init("bn_s", [0.5, -2.0, 1.5, 3.0]), _init("bn_t", [0.1, 0.2, 0.3, 0.4]),
             _init("shape", [-1, 36], np.int64)]
    path = _save(tmp_path / "nhwc.onnx", nodes, inits, [None, 6, 6, 3])
    net = load(path)
    x = rng.normal(size=(4, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x.transpose(0, 3, 1, 2)), _ort(path, x), atol=1e-4)
    assert net.metadata["onnx"]["input_layout"] == "NHWC" and net.group("dense").bias is not None
    e = net.edges().by_type()["dense_from_conv"]
    conv0 = net.unit_offsets[net.groups.index(net.group("conv"))]
    got = {(int(s - conv0), int(d - net.unit_offsets[-2])): wt for s, d, wt in zip(e.src, e.dst, e.weight)}
    want = {(c, j): np.abs(w[np.arange(9) * 4 + c, j]).sum() for c in range(4) for j in range(5) if c != 2}
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(v) for k, v in want.items())
    conv = net.edges().by_type()["conv"]                   # the NHWC BN's |s| is the conv units' gain
    gain = np.abs([0.5, -2.0, 1.5, 3.0])
    want = {(i, o): np.abs(k[o, i]).sum() * gain[o] for o in range(4) for i in range(3)}
    got = {(int(s), int(d - conv0)): wt for s, d, wt in zip(conv.src, conv.dst, conv.weight)}
    assert got.keys() == want.keys() and all(got[q] == pytest.approx(v) for q, v in want.items())


def test_shape_arithmetic_feeding_a_pad_is_metadata(tmp_path):
    """Shape -> Gather -> Sub -> Div -> Unsqueeze -> Concat(axis=0) -> Pad (UNet-style): constants,
    folded with numpy; no merge group is invented from its Sub or Concat."""
    rng = np.random.default_rng(1)
    i64 = lambda name, v: _init(name, v, np.int64)                                     # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "K1"], ["c"], name="conv1"),
             helper.make_node("Shape", ["c"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "two"], ["h"], axis=0, name="take_h"),
             helper.make_node("Sub", ["target", "h"], ["diff"], name="diff"),
             helper.make_node("Div", ["diff", "two"], ["lo"], name="half"),
             helper.make_node("Sub", ["diff", "lo"], ["hi"], name="rest"),
             helper.make_node("Unsqueeze", ["lo", "ax0"], ["lo1"], name="u1"),
             helper.make_node("Unsqueeze", ["hi", "ax0"], ["hi1"], name="u2"),
             helper.make_node("Concat", ["z2", "lo1", "lo1", "z2", "hi1", "hi1"], ["pads"], axis=0, name="cat"),
             helper.make_node("Pad", ["c", "pads"], ["p"], mode="constant", name="pad"),
             helper.make_node("Relu", ["p"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "K2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    inits = [_init("K1", rng.normal(size=(3, 2, 3, 3))), _init("K2", rng.normal(size=(2, 3, 3, 3))),
             i64("two", 2), i64("target", 8), i64("ax0", [0]), i64("z2", [0, 0])]
    path = _save(tmp_path / "pad.onnx", nodes, inits, [1, 2, 5, 5], opset=13)
    net = load(path)
    assert [g.op_type for g in net.groups] == ["input", "conv", "conv"]
    assert [s.params["pads"] for s in net.steps if s.op == "pad"] == [(2, 2, 3, 3)]     # 8 - 3 = 5 = 2 + 3
    x = rng.normal(size=(1, 2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _ort(path, x), atol=1e-4)


def _conv_graph(tmp_path, name, nodes, inits, shape=(None, 4, 6, 6)):
    return _save(tmp_path / name, nodes, inits, list(shape))


def test_add_of_mismatched_channels_names_node(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "A"], ["a"], name="ca"),
             helper.make_node("Conv", ["x", "B"], ["b"], name="cb"),
             helper.make_node("Add", ["a", "b"], ["y"], name="res_add")]
    p = _conv_graph(tmp_path, "add.onnx", nodes, [_init("A", np.ones((3, 4, 1, 1))), _init("B", np.ones((5, 4, 1, 1)))])
    with pytest.raises(FormatError, match=r"add\.onnx: node 'res_add' \(Add\): add 'res_add': expected inputs of "
                       r"equal shape \(3 channels, spatial \(6, 6\)\), found input 1 with 5 channels"):
        load(p)


def test_group_not_dividing_channels_names_node(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "K"], ["y"], name="gconv", group=3)]
    p = _conv_graph(tmp_path, "g.onnx", nodes, [_init("K", np.ones((6, 1, 3, 3)))])
    with pytest.raises(FormatError, match=r"g\.onnx: node 'gconv' \(Conv\): conv 'gconv': expected group dividing "
                       r"the input channels \(4\).*found group=3"):
        load(p)


def test_concat_on_a_spatial_axis_is_refused(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r"),
             helper.make_node("Concat", ["x", "a"], ["y"], axis=2, name="cat")]
    p = _conv_graph(tmp_path, "cat.onnx", nodes, [])
    with pytest.raises(FormatError, match=r"cat\.onnx: node 'cat' \(Concat\): expected Concat on the channel axis "
                       r"\(1 of the NCHW data tensor\), found axis=2"):
        load(p)


def test_kernel_declaring_10_to_the_12_elements_is_refused_before_allocating(tmp_path):
    k = onnx.TensorProto(name="K", data_type=TensorProto.FLOAT, dims=[10**6, 10**6, 1, 1], raw_data=b"\0" * 16)
    nodes = [helper.make_node("Conv", ["x", "K"], ["y"], name="huge")]
    p = _conv_graph(tmp_path, "big.onnx", nodes, [k])
    with pytest.raises(FormatError, match=r"big\.onnx: node 'huge' \(Conv\) input 'K': expected 1000000000000 stored "
                       r"elements \(dims \[1000000, 1000000, 1, 1\]\), found 4 element"):
        load(p)


def test_every_unsupported_op_is_listed_and_nothing_else(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat"),
             helper.make_node("Unsqueeze", ["f", "ax"], ["s"], name="seq"),
             helper.make_node("LSTM", ["s", "W", "R"], ["h"], name="lstm1", hidden_size=2),
             helper.make_node("Attention", ["h", "h", "h"], ["att"], name="attn"),
             helper.make_node("Relu", ["att"], ["y"], name="relu")]
    inits = [_init("K", np.ones((2, 4, 6, 6))), _init("ax", [0], np.int64), _init("W", np.ones((1, 8, 2))),
             _init("R", np.ones((1, 8, 2)))]
    p = _conv_graph(tmp_path, "rnn.onnx", nodes, inits)
    with pytest.raises(UnsupportedOpError, match=r"rnn\.onnx: ONNX graph: expected one of the supported ops .*found 3 "
                       r"unsupported op\(s\): node 'seq' \(Unsqueeze\), node 'lstm1' \(LSTM\), "
                       r"node 'attn' \(Attention\)$") as e:
        load(p)
    assert e.value.op == "Unsqueeze, LSTM, Attention" and len(e.value.nodes) == 3


def test_cycle_is_refused(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2"),
             helper.make_node("Conv", ["a", "K"], ["y"], name="n3")]
    p = _conv_graph(tmp_path, "cyc.onnx", nodes, [_init("K", np.ones((2, 4, 1, 1)))])
    with pytest.raises(FormatError, match=r"cyc\.onnx: ONNX graph: expected an acyclic graph \(a DAG\), found a cycle "
                       r"through node 'n1' \(Add\), node 'n2' \(Relu\)"):
        load(p)


def test_reindex_ops_auto_pad_and_reductions_match_ort(tmp_path):
    """Split, channel Gather, channel zero-Pad, Sum, Conv auto_pad=SAME_UPPER, AveragePool with
    count_include_pad, ReduceMean(keepdims=0) and a Gemm head, against ONNX Runtime."""
    rng = np.random.default_rng(2)
    i64 = lambda name, v: _init(name, v, np.int64)                                     # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv", auto_pad="SAME_UPPER", strides=[2, 2]),
             helper.make_node("Split", ["c", "parts"], ["a", "b"], axis=1, name="split"),
             helper.make_node("Gather", ["a", "perm"], ["g"], axis=1, name="shuffle"),
             helper.make_node("Pad", ["b", "cpads"], ["bp"], mode="constant", name="cpad"),
             helper.make_node("Slice", ["c", "zero", "four", "one"], ["c4"], name="first4"),
             helper.make_node("Sum", ["g", "bp", "c4"], ["s"], name="sum3"),
             helper.make_node("AveragePool", ["s"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              count_include_pad=1, name="avg"),
             helper.make_node("ReduceMean", ["p", "axes"], ["m"], keepdims=0, name="gap"),
             helper.make_node("Gemm", ["m", "W", "bias"], ["y"], transB=1, name="fc")]
    inits = [_init("K", rng.normal(size=(6, 3, 3, 3))), i64("parts", [4, 2]), i64("perm", [2, 3, 0, 1]),
             i64("cpads", [0, 1, 0, 0, 0, 1, 0, 0]), i64("axes", [2, 3]),
             i64("zero", [0]), i64("four", [4]), i64("one", [1]),
             _init("W", rng.normal(size=(3, 4))), _init("bias", rng.normal(size=3))]
    path = _save(tmp_path / "re.onnx", nodes, inits, [2, 3, 7, 7], opset=18)
    net = load(path)
    assert [g.op_type for g in net.groups] == ["input", "conv", "add", "dense"]
    x = rng.normal(size=(2, 3, 7, 7)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _ort(path, x), atol=1e-4)
    ident = net.edges().by_type()["identity"]       # shuffled 2,3,0,1; [zero, 4, 5, zero]; first four 0..3
    conv0, add0 = net.unit_offsets[1], net.unit_offsets[2]
    pairs = sorted((int(s - conv0), int(d - add0)) for s, d in zip(ident.src, ident.dst))
    assert pairs == sorted([(2, 0), (3, 1), (0, 2), (1, 3), (4, 1), (5, 2), (0, 0), (1, 1), (2, 2), (3, 3)])


def test_add_of_a_tensor_to_itself_runs(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
             helper.make_node("Add", ["c", "c"], ["d"], name="twice"),
             helper.make_node("Relu", ["d"], ["y"], name="relu")]
    path = _conv_graph(tmp_path, "xx.onnx", nodes, [_init("K", np.random.default_rng(4).normal(size=(2, 4, 3, 3)))])
    net = load(path)
    x = np.random.default_rng(5).normal(size=(2, 4, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _ort(path, x), atol=1e-4)


def test_per_channel_and_scalar_constants_are_affine_steps(tmp_path):
    """Input normalisation Sub/Div by per-channel constants, a scalar Mul, c - x, before/after a conv."""
    rng = np.random.default_rng(6)
    nodes = [helper.make_node("Sub", ["x", "mean"], ["a"], name="sub_mean"),
             helper.make_node("Div", ["a", "std"], ["b"], name="div_std"),
             helper.make_node("Conv", ["b", "K"], ["c"], name="conv"),
             helper.make_node("Mul", ["two", "c"], ["d"], name="scale2"),
             helper.make_node("Sub", ["one", "d"], ["y"], name="one_minus")]
    inits = [_init("mean", rng.normal(size=(1, 4, 1, 1))), _init("std", rng.uniform(0.5, 2, size=(4, 1, 1))),
             _init("K", rng.normal(size=(3, 4, 3, 3))), _init("two", 2.0), _init("one", [1.0])]
    path = _conv_graph(tmp_path, "aff.onnx", nodes, inits)
    net = load(path)
    assert [s.op for s in net.steps] == ["input", "affine", "affine", "conv", "affine", "affine"]
    x = rng.normal(size=(2, 4, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), _ort(path, x), atol=1e-4)
    bad = [helper.make_node("Mul", ["x", "M"], ["m"], name="spatial_mul"), helper.make_node("Conv", ["m", "K"], ["y"])]
    p2 = _conv_graph(tmp_path, "sp.onnx", bad, [_init("M", np.ones((1, 1, 6, 6))), inits[2]])
    with pytest.raises(FormatError, match=r"sp\.onnx: node 'spatial_mul' \(Mul\) input 'M': expected a scalar or "
                       r"per-channel constant \(4 channels, axis 1 of the NCHW tensor\), found shape \(1, 1, 6, 6\)"):
        load(p2)


def test_gather_with_data_indices_is_listed_as_unsupported(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat"),
             helper.make_node("ArgMax", ["f"], ["i"], axis=1, keepdims=0, name="pick"),
             helper.make_node("Gather", ["f", "i"], ["y"], axis=1, name="data_gather")]
    p = _conv_graph(tmp_path, "dg.onnx", nodes, [_init("K", np.ones((2, 4, 3, 3)))])
    with pytest.raises(UnsupportedOpError, match=r"dg\.onnx: ONNX graph: .*found 1 unsupported op\(s\): "
                       r"node 'data_gather' \(Gather\)$"):
        load(p)


def test_an_attribute_of_the_wrong_type_is_a_format_error(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "K"], ["y"], name="odd", group="two")]
    p = _conv_graph(tmp_path, "odd.onnx", nodes, [_init("K", np.ones((2, 4, 3, 3)))])
    with pytest.raises(FormatError, match=r"odd\.onnx: node 'odd' \(Conv\): expected well-formed attributes and "
                       r"inputs for its op, found ValueError"):
        load(p)
