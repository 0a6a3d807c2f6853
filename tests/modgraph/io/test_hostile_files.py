"""Hostile and damaged files: a FormatError naming file, place, expected and found; nothing read or
allocated beyond the file's real content; no hang."""
import builtins
import tracemalloc

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from modgraph.errors import FormatError
from modgraph.io import export_onnx, load, read_onnx
from modgraph.network import Layer, LayeredNetwork


def _model(nodes, inits=(), sparse=(), in_dims=(None, 3)):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_dims))],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
                              initializer=list(inits), sparse_initializer=list(sparse))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _raw_tensor(name, dims, **fields):
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, **fields)
    t.dims.extend(dims)
    return t


def _small_net():
    return LayeredNetwork([Layer.from_dense(np.arange(6.0).reshape(2, 3) - 2, activation="relu"),
                           Layer.from_dense(np.ones((1, 2)), activation="identity")])


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_truncated_files_of_every_format(tmp_path, cut):
    export_onnx(_small_net(), tmp_path / "m.onnx")
    torch.save({"0.weight": torch.ones(2, 3)}, tmp_path / "m.pt")
    for name in ("m.onnx", "m.pt"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(data[: int(len(data) * cut)])
        with pytest.raises(FormatError, match=rf"cut_{name}: .*expected .*found "):
            load(tmp_path / f"cut_{name}")


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes(tmp_path, seed):
    junk = np.random.default_rng(seed).bytes(2000)
    for name in ("r.onnx", "r.pt", "r.bin"):
        (tmp_path / name).write_bytes(junk)
        with pytest.raises(FormatError, match=rf"{name}: .*expected .*found "):
            load(tmp_path / name)


def test_dimension_claiming_1e12_elements_is_refused_before_allocating(tmp_path):
    w = _raw_tensor("W", [10**6, 10**6], raw_data=b"\0" * 16)           # onnx.helper would refuse to build it
    s = helper.make_sparse_tensor(helper.make_tensor("S", TensorProto.FLOAT, [1], [1.0]),
                                  helper.make_tensor("S_i", TensorProto.INT64, [1], [0]), [10**12, 3])
    cases = {"dense.onnx": _model([helper.make_node("MatMul", ["x", "W"], ["y"])], [w], in_dims=(None, 10**12)),
             "sparse.onnx": _model([helper.make_node("Gemm", ["x", "S"], ["y"], transB=1)], sparse=[s])}
    messages = {"dense.onnx": r"dense\.onnx: node '#0' \(MatMul\) input 'W': expected 1000000000000 stored elements "
                              r"\(dims \[1000000, 1000000\]\), found 4 element\(s\)",
                "sparse.onnx": r"sparse\.onnx: node '#0' \(Gemm\) input B 'S': expected at most 64 units per stored "
                               r"value for its 1 values, found dims \[1000000000000, 3\]"}
    for name, model in cases.items():
        onnx.save(model, tmp_path / name)
        tracemalloc.start()
        with pytest.raises(FormatError, match=messages[name]):
            load(tmp_path / name)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 5_000_000, peak


def _external_model(tmp_path, location, *, length=24):
    w = _raw_tensor("W", [3, 2])
    w.data_location = TensorProto.EXTERNAL
    for k, v in {"location": location, "offset": "0", "length": str(length)}.items():
        w.external_data.add(key=k, value=v)
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    onnx.save(_model([helper.make_node("MatMul", ["x", "W"], ["y"])], [w]), folder / "m.onnx")
    return folder / "m.onnx"


def test_external_data_escaping_the_folder_is_refused_and_never_read(tmp_path, monkeypatch):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(6, dtype=np.float32).tobytes())
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    reads = lambda: [f for f in opened if f.endswith(("secret.bin", "w.bin"))]  # noqa: E731
    for location in ("../secret.bin", str(secret), "sub/../../secret.bin"):
        with pytest.raises(FormatError, match=r"m\.onnx: node '#0' \(MatMul\) input 'W' external_data location: "
                           r"expected a relative path inside the model's folder, found '.*secret\.bin'"):
            load(_external_model(tmp_path, location))
    assert reads() == []                                                        # never even opened
    (tmp_path / "model" / "w.bin").write_bytes(secret.read_bytes())             # the control: inside is read
    net = load(_external_model(tmp_path, "w.bin"))
    assert reads() == [str(tmp_path / "model" / "w.bin")] and net.layers[0].dense().tolist() == [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
    with pytest.raises(FormatError, match=r"external_data 'w\.bin': expected 24 bytes inside the 24-byte data file, "
                       r"found offset 0, length 4000"):
        load(_external_model(tmp_path, "w.bin", length=4000))


def test_cycle_is_refused(tmp_path):
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2")]
    onnx.save(_model(nodes), tmp_path / "cyc.onnx")
    with pytest.raises(FormatError, match=r"cyc\.onnx: ONNX graph: expected an acyclic graph \(a DAG\), found a cycle "
                       r"through node 'n\d' \(\w+\), node 'n\d' \(\w+\)"):
        load(tmp_path / "cyc.onnx")


def test_widths_that_do_not_chain_and_nan_weights(tmp_path):
    w1 = numpy_helper.from_array(np.ones((4, 3), np.float32), "W1")
    w2 = numpy_helper.from_array(np.ones((2, 5), np.float32), "W2")
    nodes = [helper.make_node("Gemm", ["x", "W1"], ["h"], transB=1, name="fc1"),
             helper.make_node("Gemm", ["h", "W2"], ["y"], transB=1, name="fc2")]
    onnx.save(_model(nodes, [w1, w2]), tmp_path / "gap.onnx")
    with pytest.raises(FormatError, match=r"gap\.onnx: node 'fc2' \(Gemm\): expected a weight with 4 inputs \(the "
                       r"width of layer 0\), found 5 inputs"):
        load(tmp_path / "gap.onnx")
    bad = np.ones((4, 3), np.float32)
    bad[1, 2], bad[0, 0] = np.nan, np.inf
    onnx.save(_model(nodes[:1], [numpy_helper.from_array(bad, "W1")]), tmp_path / "nan.onnx")
    with pytest.raises(FormatError, match=r"nan\.onnx: layer 0 weight: expected finite values, found 2 NaN/Inf"):
        load(tmp_path / "nan.onnx")


def test_other_malformed_graphs(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    cases = {
        "transa.onnx": ([helper.make_node("Gemm", ["x", "W"], ["y"], transA=1, name="g")], [w],
                        r"node 'g' \(Gemm\): expected transA=0 .*, found transA=1"),
        "castint.onnx": ([helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT64, name="c"),
                          helper.make_node("Gemm", ["c", "W"], ["y"], transB=1)], [w],
                         r"node 'c' \(Cast\): expected a Cast to a floating point type, found to=INT64"),
        "nolayer.onnx": ([helper.make_node("Relu", ["x"], ["y"], name="r")], [],
                         r"node 'r' \(Relu\): expected an activation directly after a dense layer"),
        "deadend.onnx": ([helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
                          helper.make_node("Constant", [], ["y"], value_float=1.0)], [w],
                         r"tensor 'h': expected the chain to end at a graph output \(y\), found a value that nothing uses"),
        "dup.onnx": ([helper.make_node("Relu", ["x"], ["y"], name="a"), helper.make_node("Relu", ["x"], ["y"], name="b")],
                     [], r"node 'b' \(Relu\): expected a single producer of tensor 'y', found also produced by node 'a'"),
    }
    cases["twice.onnx"] = ([helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)], [w, w],
                           r"initializer 'W': expected unique initializer names, found a second one")
    for name, (nodes, inits, message) in cases.items():
        onnx.save(_model(nodes, inits), tmp_path / name)
        with pytest.raises(FormatError, match=message):
            read_onnx(tmp_path / name)


def test_state_dict_entries_outside_linear_layers_are_refused_not_ignored(tmp_path):
    cases = {"norm.pt": ({"0.weight": torch.ones(2, 3), "1.weight": torch.ones(2), "1.bias": torch.zeros(2)},
                         r"state dict entry '1\.weight': expected a 2-D linear weight \(out, in\), found shape \(2,\) "
                         r"\(a normalisation or embedding layer\?\)"),
             "stray.pt": ({"0.weight": torch.ones(2, 3), "temperature": torch.ones(1)},
                          r"state dict entries 'temperature': expected parts of a linear layer with a 2-D weight, "
                          r"found no weight beside them")}
    for name, (state, message) in cases.items():
        torch.save(state, tmp_path / name)
        with pytest.raises(FormatError, match=message):
            load(tmp_path / name)


def test_malformed_modgraph_metadata_props_are_refused(tmp_path):
    export_onnx(_small_net(), tmp_path / "m.onnx")
    model = onnx.load(tmp_path / "m.onnx")
    helper.set_model_props(model, {"modgraph.input_names": "5", "modgraph.metadata": "{}"})
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(FormatError, match=r"m\.onnx: metadata_props 'modgraph\.input_names': expected a list of "
                       r"strings, found 5"):
        load(tmp_path / "m.onnx")


def test_hdf5_dataset_claiming_1e9_elements_without_stored_data_is_refused(tmp_path):
    import h5py

    from modgraph.io import save
    save(_small_net(), tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        del f["layers/000/weight/data"]
        f.create_dataset("layers/000/weight/data", shape=(10**9,), dtype="f4", chunks=(2**16,))   # nothing written
    tracemalloc.start()
    with pytest.raises(FormatError, match=r"m\.h5: /layers/000/weight/data: expected stored data backing its "
                       r"\(1000000000,\) shape, found 0 stored bytes"):
        load(tmp_path / "m.h5")
    assert tracemalloc.get_traced_memory()[1] < 5_000_000
    tracemalloc.stop()
