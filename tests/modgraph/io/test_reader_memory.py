"""Readers hand their arrays to the layers without copies: peak memory stays near the result's size."""
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from modgraph.io import export_onnx, load, save
from modgraph.network import Layer, LayeredNetwork


def test_layer_copy_false_takes_the_arrays_over_and_default_copies():
    w = sp.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0]]))
    kept = Layer(w, np.zeros(2), copy=False)
    assert np.shares_memory(kept.weight.data, w.data) and not kept.weight.data.flags.writeable
    fresh = sp.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0]]))
    copied = Layer(fresh, np.zeros(2))
    assert not np.shares_memory(copied.weight.data, fresh.data) and fresh.data.flags.writeable


@pytest.mark.parametrize("fmt", ["onnx", "hdf5"])
def test_peak_memory_of_a_load_is_close_to_the_result(tmp_path, fmt):
    rng = np.random.default_rng(0)
    widths = [300, 700, 700, 10]
    net = LayeredNetwork([Layer.from_dense(rng.normal(size=(o, i)).astype(np.float32), activation="relu")
                          for i, o in zip(widths[:-1], widths[1:])])
    path = tmp_path / f"net.{fmt}"
    export_onnx(net, path) if fmt == "onnx" else save(net, path)
    result_bytes = sum(l.weight.data.nbytes + l.weight.indices.nbytes for l in net.layers)   # 8 bytes per edge
    tracemalloc.start()
    back = load(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert back.summary()["n_edges"] == net.summary()["n_edges"]
    assert peak < 1.2 * result_bytes, (peak, result_bytes)


def test_fast_finite_check_accepts_huge_finite_weights_and_still_counts_nan(tmp_path):
    import warnings

    from modgraph.errors import FormatError
    w = np.full((2, 3), 3e38, np.float32)                     # the float32 sum overflows; the values are finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save(LayeredNetwork([Layer.from_dense(w)]), tmp_path / "big.h5")
        assert load(tmp_path / "big.h5").layers[0].dense().max() == np.float32(3e38)
    w[1, 2] = np.nan
    with pytest.raises(FormatError, match=r"layer 0 weight: expected finite values, found 1 NaN/Inf value\(s\)"):
        LayeredNetwork([Layer.from_dense(w)])
