"""Keras functional and Sequential CNNs (.keras and .h5) as DagNetworks: forward = keras' predict, and the
unit edges = a computation from the Keras kernels by loops in this file (Keras 3 on the torch backend)."""
import json
import os
import warnings

import h5py
import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "torch"            # before keras is imported (no TensorFlow here)
import keras  # noqa: E402

from modgraph.dag import DagNetwork  # noqa: E402
from modgraph.errors import FormatError, UnsupportedOpError  # noqa: E402
from modgraph.io import load  # noqa: E402

L = keras.layers


def _save(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)
    return path


def _randomise(model, seed):
    """Random biases and BN statistics (kernels keep Keras' Glorot init), a few pruned kernel entries."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        new = []
        for v, w in zip(layer.weights, ws):
            n = v.path.rsplit("/", 1)[-1]
            if n in ("gamma", "moving_variance"):
                w = rng.uniform(0.5, 2.0, w.shape)
            elif n in ("beta", "moving_mean", "bias"):
                w = rng.normal(scale=0.3, size=w.shape)
            else:
                w = w * (rng.random(w.shape) < 0.8)
            new.append(w.astype(np.float32))
        layer.set_weights(new)


def _functional():
    inp = keras.Input((8, 8, 3), name="img")
    r1 = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(L.Conv2D(6, 3, padding="same", name="c1")(inp)))
    dw = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(r1)
    c2 = L.Conv2D(12, 1, groups=2, name="c2")(r1)
    s = L.BatchNormalization(name="bn2")(L.Add(name="add")([dw, c2]))          # BN after an Add
    t = L.Concatenate(name="cat")([s, r1])
    t = L.MaxPooling2D(2, padding="same", name="mp")(L.Dropout(0.2, name="drop")(t))
    t = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c3")(t)
    t = L.AveragePooling2D(3, strides=1, padding="same", name="ap")(t)
    out = L.Dense(5, name="fc")(L.Flatten(name="flat")(t))
    return keras.Model(inp, out, name="branchy")


def _sequential():
    return keras.Sequential([keras.Input((9, 9, 2), name="img"), L.Conv2D(4, 3, dilation_rate=2, name="c1"),
                             L.BatchNormalization(name="bn"), L.Activation("tanh", name="act"),
                             L.AveragePooling2D(2, name="ap"), L.Conv2D(5, 2, strides=(1, 2), padding="same",
                                                                         activation="elu", name="c2"),
                             L.GlobalAveragePooling2D(name="gap"), L.Dense(3, activation="softmax", name="fc")])


def _expected_edges(model):
    """{(src unit, dst unit): weight} from the Keras kernels, BN gains multiplied into the units they follow."""
    units, edges, gain = {}, {}, {}

    def bn_scale(layer):
        w = {v.path.rsplit("/", 1)[-1]: a for v, a in zip(layer.weights, layer.get_weights())}
        return np.abs(w["gamma"]) / np.sqrt(w["moving_variance"].astype(np.float64) + layer.epsilon)

    for layer in model.layers:
        ins = [t._keras_history[0].name for t in (layer.input if isinstance(layer.input, list) else [layer.input])] \
            if not isinstance(layer, keras.layers.InputLayer) else []
        for n in ins:                                          # a Sequential model lists no InputLayer
            if n not in units:
                units[n] = [f"{n}:{c}" for c in range(layer.input.shape[-1])]
        src = [u for n in ins for u in units[n]]
        name = layer.name
        if isinstance(layer, keras.layers.InputLayer):
            units[name] = [f"{name}:{c}" for c in range(layer.output.shape[-1])]
        elif isinstance(layer, (L.Conv2D, L.DepthwiseConv2D)):
            k = layer.get_weights()[0]
            if isinstance(layer, L.DepthwiseConv2D):
                o_of = [(c * k.shape[3] + m, c, k[:, :, c, m]) for c in range(k.shape[2]) for m in range(k.shape[3])]
            else:
                per_in, per_out = k.shape[2], k.shape[3] // layer.groups
                o_of = [(o, (o // per_out) * per_in + j, k[:, :, j, o]) for o in range(k.shape[3])
                        for j in range(per_in)]
            units[name] = [f"{name}:{o}" for o in range(layer.output.shape[-1])]
            for o, c, sl in o_of:
                if np.count_nonzero(sl):
                    edges[(src[c], units[name][o])] = np.abs(sl).astype(np.float64).sum()
        elif isinstance(layer, L.Dense):
            k = layer.get_weights()[0]
            prev = model.get_layer(ins[0])
            units[name] = [f"{name}:{j}" for j in range(k.shape[1])]
            if isinstance(prev, L.Flatten):                      # features in H, W, C order (channels_last)
                h, w, c = prev.input.shape[1:]
                k4 = k.reshape(h, w, c, -1)
                for ch in range(c):
                    for j in range(k.shape[1]):
                        sl = k4[:, :, ch, j]
                        if np.count_nonzero(sl):
                            edges[(src[ch], units[name][j])] = np.abs(sl).astype(np.float64).sum()
            else:
                for i in range(k.shape[0]):
                    for j in range(k.shape[1]):
                        if k[i, j]:
                            edges[(src[i], units[name][j])] = abs(float(k[i, j]))
        elif isinstance(layer, L.Add):
            units[name] = [f"{name}:{c}" for c in range(layer.output.shape[-1])]
            n = len(units[name])
            for i in range(len(ins)):
                for c in range(n):
                    edges[(src[i * n + c], units[name][c])] = 1.0
        elif isinstance(layer, L.BatchNormalization):         # follows the group that made its input
            units[name] = src
            for c, u in enumerate(src):
                gain[u] = gain.get(u, 1.0) * bn_scale(layer)[c]
        else:                                                  # pass-through and re-index layers
            units[name] = src
    # every consumer here reads a BN'd unit after its BN: the edge into v carries v's own BN gain only
    return {(a, b): w * gain.get(b, 1.0) for (a, b), w in edges.items()}


def _check(model, net, x, seed):
    assert isinstance(net, DagNetwork) and not net.is_chain
    np.testing.assert_allclose(net.forward(x.transpose(0, 3, 1, 2)), model.predict(x, verbose=0), atol=1e-4)
    e = net.edges()
    names = net.unit_names()
    found = {(names[s], names[d]): w for s, d, w in zip(e.src, e.dst, e.weight)}
    assert e.n_edges == len(found)
    expected = _expected_edges(model)
    assert set(found) == set(expected)
    for key, w in expected.items():
        assert found[key] == pytest.approx(w, rel=1e-6), key


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_functional_cnn_with_add_concat_and_depthwise_matches_keras(tmp_path, suffix):
    model = _functional()
    _randomise(model, seed=1)
    net = load(_save(model, tmp_path / f"m{suffix}"))
    assert net.source_format == ("keras" if suffix == ".keras" else "keras-h5")
    assert [g.name for g in net.groups] == ["img", "c1", "dw", "c2", "add", "c3", "fc"]
    g = net.group("c2")
    assert g.params["group"] == 2 and g.weight.shape == (12, 3, 1, 1) and net.group("dw").params["group"] == 6
    assert net.group("c3").stage == 2 and net.group("add").kind == "merge" and net.group("fc").kind == "output"
    assert net.metadata["keras"]["data_format"] == "channels_last"
    x = np.random.default_rng(2).normal(size=(6, 8, 8, 3)).astype(np.float32)
    _check(model, net, x, 2)
    assert set(net.edges().type_names()) == {"conv", "identity", "dense_from_conv"}


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_sequential_cnn_with_dilation_global_pool_matches_keras(tmp_path, suffix):
    model = _sequential()
    _randomise(model, seed=3)
    net = load(_save(model, tmp_path / f"s{suffix}"))
    assert [g.name for g in net.groups] == ["img", "c1", "c2", "fc"]
    assert net.group("c1").params["dilations"] == (2, 2) and net.group("c2").params["strides"] == (1, 2)
    assert net.group("fc").activation == "softmax" and not net.group("fc").activation_assumed
    x = np.random.default_rng(4).normal(size=(5, 9, 9, 2)).astype(np.float32)
    _check(model, net, x, 4)
    assert set(net.edges().type_names()) == {"conv", "dense_from_conv"}


def _hand_file(path, layers, weights, outputs):
    """A functional model file in the Keras 2 .h5 layout, written by hand (for models Keras refuses to build)."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"], f.attrs["backend"] = "2.15.0", "tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {
            "name": "bad", "layers": layers, "input_layers": [["in", 0, 0]],
            "output_layers": [[o, 0, 0] for o in outputs]}})
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = [l["config"]["name"].encode() for l in layers]
        for layer in layers:
            name = layer["config"]["name"]
            g = mw.create_group(name)
            g.attrs["weight_names"] = [f"{name}/{k}:0".encode() for k in weights.get(name, {})]
            for k, v in weights.get(name, {}).items():
                g[f"{name}/{k}:0"] = v


def _layer(kind, name, inputs, **cfg):
    return {"class_name": kind, "config": {"name": name, **cfg}, "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]]}


_IN = {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 6, 6, 3]}, "inbound_nodes": []}


def test_add_of_mismatched_channels_names_file_layer_expected_and_found(tmp_path):
    layers = [_IN, _layer("Conv2D", "a", ["in"], filters=4, kernel_size=[3, 3], padding="same"),
              _layer("Conv2D", "b", ["in"], filters=5, kernel_size=[1, 1], padding="valid"),
              _layer("Add", "sum", ["a", "b"])]
    _hand_file(tmp_path / "add.h5", layers,
               {"a": {"kernel": np.ones((3, 3, 3, 4))}, "b": {"kernel": np.ones((1, 1, 3, 5))}}, ["sum"])
    with pytest.raises(FormatError, match=r"add\.h5: model_config layer 3 'sum' \(Add\): add 'sum': expected inputs "
                       r"of equal shape \(4 channels, spatial \(6, 6\)\), found input 1 with 5 channels"):
        load(tmp_path / "add.h5")


def test_bad_graphs_are_refused_with_the_layer_named(tmp_path):
    k = {"a": {"kernel": np.ones((1, 1, 3, 2))}, "b": {"kernel": np.ones((1, 1, 2, 2))}}
    cyc = [_IN, _layer("Conv2D", "a", ["b"], filters=2, kernel_size=1),
           _layer("Conv2D", "b", ["a"], filters=2, kernel_size=1)]
    _hand_file(tmp_path / "cyc.h5", cyc, k, ["b"])
    with pytest.raises(FormatError, match=r"cyc\.h5: model_config layer \d '[ab]': expected an acyclic graph of "
                       r"layers, found a cycle through"):
        load(tmp_path / "cyc.h5")
    cat = [_IN, _layer("Conv2D", "a", ["in"], filters=2, kernel_size=1), _layer("Concatenate", "c", ["a", "a"], axis=1)]
    _hand_file(tmp_path / "cat.h5", cat, k, ["c"])
    with pytest.raises(FormatError, match=r"cat\.h5: model_config layer 2 'c' \(Concatenate\): expected concatenation "
                       r"on the channel axis \(-1 or 3\), found axis 1"):
        load(tmp_path / "cat.h5")
    lstm = [_IN, _layer("Conv2D", "a", ["in"], filters=2, kernel_size=1), _layer("LSTM", "l", ["a"]),
            _layer("Attention", "att", ["l"])]
    _hand_file(tmp_path / "lstm.h5", lstm, k, ["att"])
    with pytest.raises(UnsupportedOpError, match=r"lstm\.h5: model_config layer 2 'l' \(LSTM\), layer 3 'att' "
                       r"\(Attention\): expected one of the supported ops \(.*Conv2D.*\), found unsupported op 'LSTM'"):
        load(tmp_path / "lstm.h5")
    dense4d = [_IN, _layer("Conv2D", "a", ["in"], filters=2, kernel_size=1), _layer("Dense", "d", ["a"])]
    _hand_file(tmp_path / "d4.h5", dense4d, {**k, "d": {"kernel": np.ones((2, 3))}}, ["d"])
    with pytest.raises(FormatError, match=r"d4\.h5: model_config layer 2 'd' \(Dense\): expected a Dense on a 2-D "
                       r"tensor \(a Flatten or global pool before it\), found a 4-D tensor of spatial size \(6, 6\)"):
        load(tmp_path / "d4.h5")


def test_dense_branches_are_a_dag_and_a_dense_chain_stays_a_layered_network(tmp_path):
    from modgraph.network import LayeredNetwork
    inp = keras.Input((5,), name="x")
    a, b = L.Dense(4, activation="tanh", name="a")(inp), L.Dense(4, name="b")(inp)
    out = L.Dense(3, name="out")(L.Concatenate(name="cat")([L.Add(name="sum")([a, b]), a]))
    model = keras.Model(inp, out)
    _randomise(model, seed=5)
    net = load(_save(model, tmp_path / "d.keras"))
    assert isinstance(net, DagNetwork) and [g.name for g in net.groups] == ["x", "a", "b", "sum", "out"]
    x = np.random.default_rng(6).normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), model.predict(x, verbose=0), atol=1e-5)
    assert net.group("a").activation == "tanh"
    chain = keras.Sequential([keras.Input((5,)), L.Dense(4, activation="relu"), L.Dense(2)])
    assert isinstance(load(_save(chain, tmp_path / "c.keras")), LayeredNetwork)


def test_keras2_layout_depthwise_kernel_name_and_channels_first_refusal(tmp_path):
    rng = np.random.default_rng(7)
    k = rng.normal(size=(3, 3, 3, 2))
    layers = [_IN, _layer("DepthwiseConv2D", "dw", ["in"], kernel_size=[3, 3], depth_multiplier=2, padding="valid",
                          use_bias=False), _layer("GlobalAveragePooling2D", "gap", ["dw"])]
    _hand_file(tmp_path / "dw.h5", layers, {"dw": {"depthwise_kernel": k}}, ["gap"])
    net = load(tmp_path / "dw.h5")
    x = rng.normal(size=(2, 6, 6, 3))
    want = np.stack([sum(x[:, i:i + 4, j:j + 4, c] * k[i, j, c, m] for i in range(3) for j in range(3))
                     .mean(axis=(1, 2)) for c in range(3) for m in range(2)], axis=1)     # channel c*2 + m
    np.testing.assert_allclose(net.forward(x.transpose(0, 3, 1, 2)), want, atol=1e-12)
    cf = [_IN, _layer("Conv2D", "c", ["in"], filters=2, kernel_size=1, data_format="channels_first")]
    _hand_file(tmp_path / "cf.h5", cf, {"c": {"kernel": np.ones((1, 1, 3, 2))}}, ["c"])
    with pytest.raises(FormatError, match=r"cf\.h5: model_config layer 1 'c' \(Conv2D\): expected data_format "
                       r"channels_last, found 'channels_first'"):
        load(tmp_path / "cf.h5")
