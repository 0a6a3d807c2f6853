"""Keras .h5 reader: Keras 3 (torch backend) files against keras' own predict; Keras 2 layout by hand."""
import json
import os
import warnings

import h5py
import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"            # before keras is imported (no TensorFlow here)
import keras  # noqa: E402

from modgraph.errors import FormatError, UnsupportedOpError  # noqa: E402
from modgraph.io import load, read_keras_h5  # noqa: E402


def _save(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    return path


def _prune_and_set_stats(model, *, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if isinstance(layer, keras.layers.Dense):
            weights[0] = weights[0] * (rng.random(weights[0].shape) < 0.6)       # pruned zeros
            if len(weights) > 1:
                weights[1] = rng.normal(size=weights[1].shape).astype(np.float32)
        elif isinstance(layer, keras.layers.BatchNormalization):      # gamma and variance positive
            weights = [rng.uniform(0.5, 2, w.shape).astype(np.float32) if v.name in ("gamma", "moving_variance")
                       else rng.normal(size=w.shape).astype(np.float32) for v, w in zip(layer.weights, weights)]
        layer.set_weights(weights)


def test_keras3_h5_matches_keras_predict(tmp_path):
    L = keras.layers
    model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu", name="fc1"),
                              L.BatchNormalization(), L.Dropout(0.3),                   # BN after the activation
                              L.Dense(7, use_bias=False), L.BatchNormalization(),       # BN into the linear Dense
                              L.Activation("tanh"), L.Dense(5), L.LeakyReLU(negative_slope=0.1),
                              L.Dense(4, activation="softmax")])
    _prune_and_set_stats(model, seed=1)
    net = load(_save(model, tmp_path / "k.h5"))
    assert net.source_format == "keras-h5" and net.widths == (6, 8, 7, 5, 4)
    assert [l.activation for l in net.layers] == ["relu", "tanh", "leaky_relu", "softmax"]
    assert net.metadata["keras"]["backend"] == "torch"
    x = np.random.default_rng(2).normal(size=(16, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), model.predict(x, verbose=0), atol=1e-5)
    kernel = model.layers[0].get_weights()[0]
    np.testing.assert_array_equal(net.layers[0].mask, kernel.T != 0)
    assert net.layers[0].n_edges == int((kernel != 0).sum())


def _keras2_file(path, layers, weights):
    """The Keras 2 (tf.keras) model.save('m.h5') layout of ecosystem facts §2.1, written by hand."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"], f.attrs["backend"] = "2.15.0", "tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"name": "seq", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "name": "in"}}] + layers}})
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [l["config"]["name"].encode() for l in layers]
        for layer in layers:
            name = layer["config"]["name"]
            g = mw.create_group(name)
            g.attrs["weight_names"] = [f"{name}/{k}:0".encode() for k in weights.get(name, {})]
            for k, v in weights.get(name, {}).items():
                g[f"{name}/{k}:0"] = v


def test_keras2_layout_with_batchnorm_and_activation_layer(tmp_path):
    rng = np.random.default_rng(3)
    k1, b1, k2 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2))
    gamma, beta, mean, var = rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)
    layers = [{"class_name": "Dense", "config": {"name": "fc1", "activation": "linear", "use_bias": True}},
              {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": [1], "epsilon": 0.01}},
              {"class_name": "Activation", "config": {"name": "act", "activation": "elu"}},
              {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.5}},
              {"class_name": "Dense", "config": {"name": "fc2", "activation": "sigmoid", "use_bias": False}}]
    _keras2_file(tmp_path / "k2.h5", layers, {"fc1": {"kernel": k1, "bias": b1}, "fc2": {"kernel": k2},
                                              "bn": {"gamma": gamma, "beta": beta, "moving_mean": mean,
                                                     "moving_variance": var}})
    net = load(tmp_path / "k2.h5")
    x = rng.normal(size=(6, 3))
    h = (x @ k1 + b1 - mean) / np.sqrt(var + 0.01) * gamma + beta
    h = np.where(h > 0, h, np.expm1(np.minimum(h, 0)))
    np.testing.assert_allclose(net.forward(x), 1 / (1 + np.exp(-(h @ k2))), atol=1e-12)
    assert net.metadata["keras"]["keras_version"] == "2.15.0"


def test_unsupported_layer_and_weights_only_file_are_refused(tmp_path):
    layers = [{"class_name": "Conv1D", "config": {"name": "conv", "filters": 2}}]
    _keras2_file(tmp_path / "c.h5", layers, {})
    with pytest.raises(UnsupportedOpError, match=r"c\.h5: model_config layer 1 'conv' \(Conv1D\): expected one of "
                       r"the supported ops \(Activation, .*BatchNormalization, .*Conv2D, Dense, .*\), "
                       r"found unsupported op 'Conv1D'"):
        load(tmp_path / "c.h5")
    with h5py.File(tmp_path / "w.h5", "w") as f:                     # Keras 2 save_weights(): no model_config
        f.attrs["layer_names"] = [b"fc1"]
        f.create_group("fc1").attrs["weight_names"] = [b"fc1/kernel:0"]
    with pytest.raises(FormatError, match=r"w\.h5: / attribute 'model_config': expected a Keras model file .*, "
                       r"found a weights-only file"):
        load(tmp_path / "w.h5")


def test_dense_widths_that_do_not_chain_are_refused(tmp_path):
    layers = [{"class_name": "Dense", "config": {"name": "a", "activation": "relu"}},
              {"class_name": "Dense", "config": {"name": "b", "activation": "linear"}}]
    _keras2_file(tmp_path / "bad.h5", layers, {"a": {"kernel": np.ones((3, 4))}, "b": {"kernel": np.ones((5, 2))}})
    with pytest.raises(FormatError, match=r"model_config layer 2 'b' \(Dense\): expected a weight with 4 inputs "
                       r"\(the width of layer 0\), found 5 inputs"):
        read_keras_h5(tmp_path / "bad.h5")


def test_keras3_onnx_export_loads_like_the_model(tmp_path):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="tanh"),
                              keras.layers.Dense(3, activation="softmax")])
    _prune_and_set_stats(model, seed=4)
    x = np.random.default_rng(5).normal(size=(8, 5)).astype(np.float32)
    model.predict(x, verbose=0)                   # keras exports only a model that has been called
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.export(str(tmp_path / "k.onnx"), format="onnx", verbose=False)
    net = load(tmp_path / "k.onnx")
    assert net.source_format == "onnx" and [l.activation for l in net.layers] == ["tanh", "softmax"]
    np.testing.assert_allclose(net.forward(x), model.predict(x, verbose=0), atol=1e-5)


def test_functional_chain_loads_and_a_dangling_layer_is_refused(tmp_path):
    inp = keras.Input((5,), name="inp")
    a = keras.layers.Dense(4, activation="relu", name="a")(inp)
    out = keras.layers.Dense(3, name="b")(keras.layers.Dropout(0.1, name="drop")(a))
    chain = keras.Model(inp, out)
    x = np.random.default_rng(6).normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_allclose(load(_save(chain, tmp_path / "f.h5")).forward(x), chain.predict(x, verbose=0), atol=1e-5)

    layers = [{"class_name": "Dense", "config": {"name": "a", "activation": "relu"}, "inbound_nodes": [[["in", 0, 0, {}]]]},
              {"class_name": "Dense", "config": {"name": "b", "activation": "linear"},
               "inbound_nodes": [[["in", 0, 0, {}]]]}]                       # b reads the input, not a
    _keras2_file(tmp_path / "by.h5", layers, {"a": {"kernel": np.ones((3, 3))}, "b": {"kernel": np.ones((3, 3))}})
    with h5py.File(tmp_path / "by.h5", "a") as f:
        config = json.loads(f.attrs["model_config"])
        config["class_name"] = "Functional"
        config["config"].update(input_layers=[["in", 0, 0]], output_layers=[["b", 0, 0]])
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(FormatError, match=r"by\.h5: model_config layer 1 'a': expected a layer that an output "
                       r"depends on, found a layer no other layer or output reads"):      # b reads the input: a dangles
        load(tmp_path / "by.h5")


def test_keras2_inbound_node_form_is_understood():
    from modgraph.io.keras import _history_names
    assert _history_names([[["fc1", 0, 0, {}]]]) == ["fc1"]
    assert _history_names([{"args": [{"config": {"keras_history": ["fc1", 0, 0]}}], "kwargs": {"training": False}}]) \
        == ["fc1"]


def test_keras_archive_matches_keras_predict(tmp_path):
    L = keras.layers
    model = keras.Sequential([keras.Input((6,)), L.Dense(8, activation="relu", name="fc1"),
                              L.BatchNormalization(center=False), L.Dense(5, use_bias=False),
                              L.BatchNormalization(scale=False), L.Activation("sigmoid"), L.Dense(3)])
    _prune_and_set_stats(model, seed=8)
    net = load(_save(model, tmp_path / "m.keras"))
    assert net.source_format == "keras" and net.widths == (6, 8, 5, 3)
    assert net.metadata["keras"]["keras_version"] == keras.__version__
    x = np.random.default_rng(9).normal(size=(12, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), model.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_array_equal(net.layers[0].mask, model.layers[0].get_weights()[0].T != 0)


def test_keras_archive_zip_bomb_and_missing_members_are_refused(tmp_path):
    import zipfile
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    data = bytearray(_save(model, tmp_path / "m.keras").read_bytes())
    entry = data.index(b"PK\x01\x02" + data[data.index(b"PK\x01\x02") + 4:data.index(b"PK\x01\x02") + 4])
    while True:                                   # the central-directory entry of model.weights.h5
        name_len = int.from_bytes(data[entry + 28:entry + 30], "little")
        if data[entry + 46:entry + 46 + name_len] == b"model.weights.h5":
            break
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24:entry + 28] = (0xFFFFFFFE).to_bytes(4, "little")   # claims ~4 GiB once unpacked
    (tmp_path / "bomb.keras").write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"bomb\.keras: zip member 'model\.weights\.h5': expected at most "
                       r"1073741824 bytes once unpacked, found 4294967294 bytes"):
        load(tmp_path / "bomb.keras")
    with zipfile.ZipFile(tmp_path / "half.keras", "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(FormatError, match=r"half\.keras: zip member 'model\.weights\.h5': expected present"):
        load(tmp_path / "half.keras")


def test_negative_batchnorm_variance_is_refused(tmp_path):
    layers = [{"class_name": "Dense", "config": {"name": "fc", "activation": "linear"}},
              {"class_name": "BatchNormalization", "config": {"name": "bn", "epsilon": 0.001}}]
    _keras2_file(tmp_path / "bn.h5", layers, {"fc": {"kernel": np.ones((3, 2))}, "bn": {
        "gamma": np.ones(2), "beta": np.zeros(2), "moving_mean": np.zeros(2), "moving_variance": np.array([1.0, -2.0])}})
    with pytest.raises(FormatError, match=r"model_config layer 2 'bn' \(BatchNormalization\) moving_variance: expected "
                       r"variances with var \+ epsilon > 0, found 1 non-positive value\(s\)"):
        load(tmp_path / "bn.h5")
