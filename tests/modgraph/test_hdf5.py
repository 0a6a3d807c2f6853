import json

import h5py
import numpy as np
import pytest

from modgraph.errors import FormatError
from modgraph.io import load, save
from modgraph.testing import random_network


def _assert_same(a, b):
    assert a.widths == b.widths
    assert a.input_names == b.input_names
    assert a.metadata == b.metadata
    for la, lb in zip(a.layers, b.layers):
        assert la.activation == lb.activation and la.alpha == lb.alpha and la.unit_names == lb.unit_names
        assert la.weight.dtype == lb.weight.dtype and la.bias.dtype == lb.bias.dtype
        np.testing.assert_array_equal(la.weight.indptr, lb.weight.indptr)
        np.testing.assert_array_equal(la.weight.indices, lb.weight.indices)
        np.testing.assert_array_equal(la.weight.data, lb.weight.data)      # exact, explicit zeros included
        np.testing.assert_array_equal(la.bias, lb.bias)


@pytest.mark.parametrize("widths", [[3, 1], [6, 5, 4], [10, 20, 20, 3], [4, 24, 24, 24, 16]])
@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_exact(tmp_path, widths, density, dtype):
    net = random_network(widths, density=density, dtype=dtype, seed=len(widths), names=True,
                         empty_layers=(1,) if len(widths) > 3 else ())
    path = tmp_path / "net.h5"
    save(net, path, metadata={"accuracy": 1.0})
    back = load(path)
    assert back.source_format == "modgraph-hdf5"
    assert back.metadata == {**net.metadata, "accuracy": 1.0}
    expected = random_network(widths, density=density, dtype=dtype, seed=len(widths), names=True,
                              empty_layers=(1,) if len(widths) > 3 else ())
    _assert_same(back, _with_meta(expected, back.metadata))
    if len(widths) > 3:
        assert back.layers[1].n_edges == 0


def _with_meta(net, meta):
    from modgraph.network import LayeredNetwork
    return LayeredNetwork(net.layers, input_names=net.input_names, metadata=meta)


def test_save_is_atomic_and_leaves_nothing_on_failure(tmp_path):
    net = random_network([3, 2])
    path = tmp_path / "net.h5"
    save(net, path)
    before = path.read_bytes()
    with pytest.raises(FormatError, match="metadata: expected JSON-serialisable values"):
        save(net, path, metadata={"bad": {1, 2}})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]


# -- hostile and damaged files ------------------------------------------------------------------------
@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "net.h5"
    save(random_network([4, 5, 3], seed=1), path)
    return path


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def _replace(group, name, data):
    del group[name]
    group.create_dataset(name, data=data)


CASES = {
    "wrong tag": (lambda f: f.attrs.modify("format", "sparse-mlp"),
                  r"/ attribute 'format': expected 'modgraph', found 'sparse-mlp'"),
    "newer version": (lambda f: f.attrs.modify("format_version", "3.0"),     # 2.0 = DAG files (hdf5_dag)
                      r"/ attribute 'format_version': expected version 1.x or 2.x .*found '3.0'"),
    "missing dataset": (lambda f: f["layers/001"].__delitem__("bias"),
                        r"/layers/001/bias: expected a dataset, found missing"),
    "missing weight group": (lambda f: f["layers/000"].__delitem__("weight"),
                             r"/layers/000/weight: expected a CSR group"),
    "indptr length": (lambda f: _replace(f["layers/000/weight"], "indptr", np.array([0, 1, 2])),
                      r"/layers/000/weight/indptr: expected 6 entries \(n_out \+ 1\), found 3"),
    "indices out of range": (lambda f: _replace(f["layers/000/weight"], "indices",
                                                 f["layers/000/weight/indices"][()] + 10),
                             r"/layers/000/weight/indices: expected column indices in \[0, 4\)"),
    "indptr vs data": (lambda f: _replace(f["layers/000/weight"], "data", np.ones(1)),
                       r"/layers/000/weight: expected indptr\[-1\] == len\(indices\) == len\(data\)"),
    "shape chain": (lambda f: f["layers/001/weight"].attrs.modify("shape", np.array([3, 7])),
                    r"/layers/001/weight attribute 'shape': expected 5 inputs .*found 7"),
    "nan weight": (lambda f: _replace(f["layers/001/weight"], "data",
                                      np.full(f["layers/001/weight/data"].shape, np.nan)),
                   r"/layers/001/weight/data: expected finite weights, found \d+ NaN/Inf"),
    "inf bias": (lambda f: _replace(f["layers/000"], "bias", np.full(5, np.inf)),
                 r"/layers/000/bias: expected finite values, found 5 NaN/Inf"),
    "unknown activation": (lambda f: f["layers/000"].attrs.modify("activation", "swish"),
                           r"/layers/000 attribute 'activation': expected one of .*found 'swish'"),
    "bad metadata": (lambda f: f.attrs.modify("metadata_json", "{not json"),
                     r"/ attribute 'metadata_json': expected a JSON document"),
    "layer gap": (lambda f: f["layers"].move("001", "005"),
                  r"/layers: expected layers named 000, 001, found 000, 005"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_file_errors(good_file, case):
    fn, match = CASES[case]
    _edit(good_file, fn)
    with pytest.raises(FormatError, match=match) as info:
        load(good_file)
    assert str(good_file) in str(info.value)


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "net.h5"
    path.write_bytes(b"hello, this is text and not a network\n" * 4)
    with pytest.raises(FormatError, match=r"net.h5: start of file: expected one of the supported formats: "
                                          r".*modgraph-hdf5.*found a file starting with b'hello, t'"):
        load(path)


def test_empty_and_missing_file(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(FormatError, match="empty.h5: start of file: .*found an empty file"):
        load(tmp_path / "empty.h5")
    with pytest.raises(FormatError, match="nope.h5: file: expected an existing network file, found no such file"):
        load(tmp_path / "nope.h5")


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 2e-3])
def test_truncated_file(good_file, keep):
    data = good_file.read_bytes()
    good_file.write_bytes(data[: max(9, int(len(data) * keep))])
    with pytest.raises(FormatError, match=str(good_file.name)):
        load(good_file)


def test_metadata_is_json_at_root(good_file):
    with h5py.File(good_file, "r") as f:
        assert f.attrs["format"] == "modgraph" and f.attrs["format_version"] == "1.0"
        assert json.loads(f.attrs["metadata_json"])["seed"] == 1
        assert list(f.attrs["layer_sizes"]) == [4, 5, 3]


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    path = tmp_path / "net.h5"
    save(random_network([3, 2]), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
