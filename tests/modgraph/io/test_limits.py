"""The shared size guard (modgraph.io.limits) in every reader, and the refusals of issue 16: each case
failed (allocated, or said something misleading) before the guard and names file, place, declared and stored."""
import json
import pickle
import struct
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest
import torch

from modgraph.errors import FormatError
from modgraph.io import export_onnx, load, read_keras_h5, read_torch_state, save
from modgraph.io.limits import Limits, SizeGuard, current_limits, using_limits
from modgraph.network import Layer, LayeredNetwork

_CONFIG = json.dumps({"class_name": "Sequential", "config": {"layers": [
    {"class_name": "Dense", "config": {"name": "fc1", "activation": "tanh", "use_bias": True}}]}})


def _keras_h5(path, shape=None, data=None, **kw):
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = _CONFIG
        g = f.create_group("model_weights/fc1")
        g.attrs["weight_names"] = ["fc1/kernel:0", "fc1/bias:0"]
        g.create_dataset("fc1/kernel:0", shape=shape, data=data, dtype="f4", **kw)
        g["fc1/bias:0"] = np.zeros(min((shape or data.shape)[1], 30000), "f4")
        f["model_weights"].attrs["layer_names"] = ["fc1"]
    return path


def _peak(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_keras_h5_kernel_declared_without_stored_data_is_refused_before_allocating(tmp_path):
    for shape, declared in [((30000, 30000), r"900000000 float32 values = 3\.6 GB"),
                            ((10**6, 10**6), r"1000000000000 float32 values = 4\.0 TB")]:
        path = _keras_h5(tmp_path / "big.h5", shape=shape, chunks=(1000, 1000))
        assert path.stat().st_size < 200_000            # the bias is stored; the kernel is not
        def read():
            with pytest.raises(FormatError, match=r"big\.h5: /model_weights/fc1/fc1/kernel:0: expected stored data "
                               rf"backing its \({shape[0]}, {shape[1]}\) shape, found 0 stored bytes \(declared: {declared}\)"):
                load(path)
        assert _peak(read) < 5_000_000


def test_compressed_hdf5_counted_at_stored_size_with_a_ratio_cap(tmp_path):
    path = _keras_h5(tmp_path / "gz.h5", data=np.zeros((4000, 2), "f4"), compression="gzip", chunks=(4000, 2))
    assert read_keras_h5(path).widths == (4000, 2)                 # 32 KB: under the free allowance
    path = _keras_h5(tmp_path / "gz.h5", data=np.zeros((2000, 2000), "f4"), compression="gzip", chunks=(500, 500))
    with pytest.raises(FormatError, match=r"gz\.h5: /model_weights/fc1/fc1/kernel:0: expected compressed data unpacking "
                       r"to at most 200x its stored size \(MODGRAPH_MAX_COMPRESSION_RATIO\), found \d+ stored bytes for "
                       r"its \(2000, 2000\) shape \(declared: 4000000 float32 values = 16\.0 MB, \d+x\)"):
        load(path)
    net = load(path, limits=Limits(max_ratio=10**6))              # the cap is configurable
    assert net.widths == (2000, 2000) and net.summary()["n_edges"] == 0


def test_ceiling_from_the_environment_and_per_call(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = _keras_h5(tmp_path / "k.h5", data=rng.normal(size=(600, 2)).astype("f4"))
    assert load(path).widths == (600, 2)
    monkeypatch.setenv("MODGRAPH_MAX_ARRAY_BYTES", "4000")
    assert current_limits().max_array_bytes == 4000
    with pytest.raises(FormatError, match=r"k\.h5: /model_weights/fc1/fc1/kernel:0: expected an array of at most 4000 "
                       r"bytes \(MODGRAPH_MAX_ARRAY_BYTES\), found shape \(600, 2\) \(declared: 1200 float32 values"):
        load(path)
    assert load(path, limits=Limits()).widths == (600, 2)
    with using_limits(Limits(max_load_bytes=4000)):
        with pytest.raises(FormatError, match=r"expected at most 4000 bytes of arrays in one file \(MODGRAPH_MAX_LOAD_BYTES\)"):
            load(path)
    monkeypatch.setenv("MODGRAPH_MAX_ARRAY_BYTES", "lots")
    with pytest.raises(ValueError, match=r"MODGRAPH_MAX_ARRAY_BYTES='lots': expected a positive integer"):
        Limits.from_env()


def test_every_reader_applies_the_ceiling(tmp_path):
    net = LayeredNetwork([Layer.from_dense(np.arange(1.0, 601.0).reshape(300, 2))])
    save(net, tmp_path / "m.h5")
    export_onnx(net, tmp_path / "m.onnx")
    torch.save({"0.weight": torch.ones(300, 2)}, tmp_path / "m.pt")
    small = Limits(max_array_bytes=2000)
    for name, place in [("m.h5", r"/layers/000/weight/data"), ("m.onnx", r"node 'layers\.0\.gemm' \(Gemm\) input B"),
                        ("m.pt", r"zip member '.*data/0'")]:
        assert load(tmp_path / name).widths == (2, 300)
        with pytest.raises(FormatError, match=rf"{name}: {place}.*: expected (an array of )?at most 2000 bytes"):
            load(tmp_path / name, limits=small)


def test_keras_archive_member_declared_without_stored_data(tmp_path):
    inner = tmp_path / "model.weights.h5"
    with h5py.File(inner, "w") as f:
        f.create_dataset("layers/dense/vars/0", shape=(30000, 30000), dtype="f4")
        f.create_dataset("layers/dense/vars/1", data=np.zeros(30000, "f4"))
        f["layers/dense/vars"].attrs["name"] = "fc1"
    with zipfile.ZipFile(tmp_path / "m.keras", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", _CONFIG)
        z.write(inner, "model.weights.h5")
    assert (tmp_path / "m.keras").stat().st_size < 20_000
    def read():
        with pytest.raises(FormatError, match=r"m\.keras: model\.weights\.h5 /layers/dense/vars/0: expected stored data "
                           r"backing its \(30000, 30000\) shape, found 0 stored bytes"):
            load(tmp_path / "m.keras")
    assert _peak(read) < 5_000_000


def test_torch_zip_member_out_of_proportion_is_refused_before_torch_reads_it(tmp_path):
    torch.save({"0.weight": torch.zeros(3000, 300)}, tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as src, zipfile.ZipFile(tmp_path / "z.pt", "w") as dst:
        for info in src.infolist():          # the same members, deflated: 3.6 MB of zeros in a few KB
            dst.writestr(info.filename, src.read(info), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(FormatError, match=r"z\.pt: zip member '[^']*data/0': expected compressed data unpacking to at "
                       r"most 200x its stored size"):
        load(tmp_path / "z.pt")


def test_hdf5_external_and_virtual_storage_are_refused_not_read(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(4, "f4").tobytes())
    with h5py.File(tmp_path / "ext.h5", "w") as f:
        f.attrs["model_config"] = _CONFIG
        g = f.create_group("model_weights/fc1")
        g.attrs["weight_names"] = ["fc1/kernel:0"]
        g.create_dataset("fc1/kernel:0", shape=(2, 2), dtype="<f4", external=[(str(secret), 0, 16)])
        f["model_weights"].attrs["layer_names"] = ["fc1"]
    with pytest.raises(FormatError, match=r"ext\.h5: /model_weights/fc1/fc1/kernel:0: expected data stored in this "
                       r"file, found external raw data in '.*secret\.bin' \(not read\)"):
        load(tmp_path / "ext.h5")


def test_guard_examples():
    guard = SizeGuard("f", Limits(free_bytes=0))
    assert guard.claim("a", (3, 4), "float64", 96) == 96
    with pytest.raises(FormatError, match=r"f: b: expected non-negative dimensions, found \[-1, 2\]"):
        guard.claim("b", (-1, 2), "float32", 0)
    with pytest.raises(FormatError, match=r"f: s: expected at most 64 units per stored value for its 0 values, found "
                       r"dims \[5, 1048576\]"):
        SizeGuard("f").units("s", (5, 2**20), 0)


# -- the misleading refusals of issue 16 -----------------------------------------------------------
def test_plain_pickles_are_named_as_such_not_damaged(tmp_path):
    for protocol in (2, 4):
        with open(tmp_path / f"p{protocol}.pt", "wb") as fh:
            pickle.dump({"w": [1.0, 2.0]}, fh, protocol=protocol)
        with pytest.raises(FormatError, match=rf"p{protocol}\.pt: torch\.load\(weights_only=True\): expected a state dict "
                           rf"of tensors \(pickled objects are refused, never unpickled\), found a plain Python pickle "
                           rf"\(protocol {protocol}, written by pickle\.dump rather than torch\.save\)") as err:
            load(tmp_path / f"p{protocol}.pt")
        assert "damaged" not in str(err.value)


def test_torch_objects_named_and_reasons_never_cut_mid_sentence(tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "obj.pt")
    with pytest.raises(FormatError, match=r"obj\.pt: .*found pickled Python objects \(a torch\.nn\.modules\.linear\.Linear\)$"):
        load(tmp_path / "obj.pt")
    from modgraph.io import torch_state
    long = "Weights only load failed. " + "word " * 100 + "end."
    reason = torch_state._load_failure(tmp_path / "obj.pt", long)      # noqa: SLF001 - a unit check of the wording
    assert reason == "an unreadable or damaged file (Weights only load failed.)"


def test_empty_file_is_called_empty(tmp_path):
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(FormatError, match=r"e\.pt: start of file: .*found an empty file \(0 bytes\)$"):
        load(tmp_path / "e.pt")
    with pytest.raises(FormatError, match=r"e\.pt: torch\.load\(weights_only=True\): .*found an empty file \(0 bytes\)$"):
        read_torch_state(tmp_path / "e.pt")


def test_safetensors_gets_a_specific_message(tmp_path):
    # read by the safetensors reader since issue 14: a tensor that belongs to no layer is named
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(16))
    with pytest.raises(FormatError, match=r"m\.safetensors: state dict entries 'w': expected parts of a linear layer "
                       r"with a 2-D weight, found no weight beside them"):
        load(tmp_path / "m.safetensors")


def test_keras3_weights_only_file_gets_a_specific_message(tmp_path):
    with h5py.File(tmp_path / "m.weights.h5", "w") as f:          # the Keras 3 save_weights layout (facts 2.1)
        f.create_dataset("layers/dense/vars/0", data=np.ones((3, 2), "f4"))
        f["layers/dense/vars"].attrs["name"] = "fc1"
        f.create_group("vars")
    with pytest.raises(FormatError, match=r"m\.weights\.h5: /layers: expected a Keras model file .*found a Keras 3 "
                       r"weights-only file \(model\.save_weights\('\*\.weights\.h5'\)\): it holds the weights but not "
                       r"the layer order"):
        load(tmp_path / "m.weights.h5")


def test_keras3_weights_file_written_by_keras(tmp_path):
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
    model.save_weights(tmp_path / "real.weights.h5")
    with pytest.raises(FormatError, match=r"real\.weights\.h5: /layers: .*a Keras 3 weights-only file"):
        load(tmp_path / "real.weights.h5")


def test_sparse_onnx_export_of_a_wide_layer_with_few_edges_round_trips(tmp_path):
    w = np.zeros((4096, 4096))
    w[np.arange(50), np.arange(50) * 3] = np.arange(1.0, 51.0)
    net = LayeredNetwork([Layer.from_dense(w, activation="relu"), Layer.from_dense(np.ones((2, 4096)))])
    export_onnx(net, tmp_path / "s.onnx", sparse=True)
    back = load(tmp_path / "s.onnx")
    assert back.widths == (4096, 4096, 2) and back.layers[0].n_edges == 50
    assert (back.layers[0].weight != net.layers[0].weight).nnz == 0


def test_root_layer_sizes_and_n_layers_are_checked(tmp_path):
    net = LayeredNetwork([Layer.from_dense(np.ones((3, 2))), Layer.from_dense(np.ones((1, 3)))])
    save(net, tmp_path / "m.h5")
    assert load(tmp_path / "m.h5").widths == (2, 3, 1)
    with h5py.File(tmp_path / "m.h5", "a") as f:
        f.attrs["layer_sizes"] = np.array([2, 5, 1], np.int64)
    with pytest.raises(FormatError, match=r"m\.h5: / attribute 'layer_sizes': expected \[2, 3, 1\] \(the widths of the "
                       r"layers in /layers\), found \[2, 5, 1\]"):
        load(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "a") as f:
        f.attrs["layer_sizes"] = np.array([2, 3, 1], np.int64)
        f.attrs["n_layers"] = 3
    with pytest.raises(FormatError, match=r"m\.h5: / attribute 'n_layers': expected 2 \(the layers in /layers\), found 3"):
        load(tmp_path / "m.h5")

