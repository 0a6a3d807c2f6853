"""The same weights through six exporters load to identical LayeredNetworks: PyTorch (ONNX and state
dict), Keras (.h5 and .keras), scikit-learn (skl2onnx) and modgraph (HDF5 and ONNX)."""
import os
import warnings

import numpy as np
import torch

os.environ["KERAS_BACKEND"] = "torch"
import keras  # noqa: E402

from modgraph.io import export_onnx, load, save  # noqa: E402
from modgraph.network import Layer, LayeredNetwork  # noqa: E402


def _weights(seed):
    rng = np.random.default_rng(seed)
    w1 = (rng.normal(size=(5, 6)) * (rng.random((5, 6)) < 0.5)).astype(np.float32)    # pruned zeros
    w2 = (rng.normal(size=(3, 5)) * (rng.random((3, 5)) < 0.7)).astype(np.float32)
    return [(w1, rng.normal(size=5).astype(np.float32)), (w2, rng.normal(size=3).astype(np.float32))]


def _via_torch(params, tmp_path):
    m = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).eval()
    with torch.no_grad():
        for lin, (w, b) in zip((m[0], m[2]), params):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.randn(2, 6),), str(tmp_path / "t.onnx"), dynamo=False,
                          input_names=["x"], dynamic_axes={"x": {0: "n"}})
    torch.save(m.state_dict(), tmp_path / "t.pt")
    return {"torch-onnx": load(tmp_path / "t.onnx"), "torch-state-dict": load(tmp_path / "t.pt")}


def _via_keras(params, tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)])
    model.set_weights([a for w, b in params for a in (w.T, b)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(tmp_path / "k.h5")
        model.save(tmp_path / "k.keras")
    return {"keras-h5": load(tmp_path / "k.h5"), "keras-archive": load(tmp_path / "k.keras")}


def _via_sklearn(params, tmp_path):
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor
    x = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    est = MLPRegressor(hidden_layer_sizes=(5,), max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x, np.zeros((20, 3)))
    est.coefs_ = [w.T.astype(np.float64) for w, _ in params]
    est.intercepts_ = [b.astype(np.float64) for _, b in params]
    (tmp_path / "s.onnx").write_bytes(to_onnx(est, x[:1]).SerializeToString())
    return {"sklearn-onnx": load(tmp_path / "s.onnx")}


def _via_modgraph(params, tmp_path):
    net = LayeredNetwork([Layer.from_dense(w, b, activation=a) for (w, b), a in zip(params, ["relu", "identity"])])
    save(net, tmp_path / "m.h5")
    export_onnx(net, tmp_path / "m.onnx")
    return {"modgraph-hdf5": load(tmp_path / "m.h5"), "modgraph-onnx": load(tmp_path / "m.onnx")}


def test_six_exporters_give_identical_networks(tmp_path):
    params = _weights(4)
    nets = {**_via_torch(params, tmp_path), **_via_keras(params, tmp_path), **_via_sklearn(params, tmp_path),
            **_via_modgraph(params, tmp_path)}
    assert {n.source_format for n in nets.values()} == {"onnx", "torch-state-dict", "keras-h5", "keras",
                                                        "modgraph-hdf5"}
    x = np.random.default_rng(5).normal(size=(10, 6))
    ref = nets["modgraph-hdf5"]
    for name, net in nets.items():
        assert net.widths == (6, 5, 3), name
        assert [l.activation for l in net.layers] == ["relu", "identity"], name
        for layer, (w, b) in zip(net.layers, params):
            np.testing.assert_array_equal(layer.mask, w != 0, err_msg=name)            # same sparsity pattern
            np.testing.assert_allclose(layer.dense(), w, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(layer.bias, b, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(net.forward(x), ref.forward(x), atol=1e-5, err_msg=name)


def test_info_command_shows_each_files_source_format(tmp_path, capsys):
    from modgraph.cli import main
    params = _weights(6)
    _via_torch(params, tmp_path), _via_keras(params, tmp_path), _via_modgraph(params, tmp_path)
    files = [tmp_path / n for n in ("t.onnx", "t.pt", "k.h5", "m.h5")]
    assert main(["info", *map(str, files)]) == 0
    out = capsys.readouterr().out
    for name, fmt in zip(files, ["onnx", "torch-state-dict", "keras-h5", "modgraph-hdf5"]):
        assert f"{name}  [{fmt}]" in out
    assert out.count("widths 6-5-3") == 4
