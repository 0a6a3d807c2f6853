"""Keras HDF5 model files (``model.save("m.h5")``), Keras 2 and Keras 3 layouts.

Layer order, classes and activations come from the root ``model_config`` attribute (JSON);
weights from ``model_weights/<layer>`` (or the root), read through each layer group's
``weight_names`` attribute, which covers both layouts (ecosystem facts §2.1)::

    Keras 2: model_weights/fc1/fc1/kernel:0                 weight_names = ["fc1/kernel:0", ...]
    Keras 3: model_weights/fc1/sequential/fc1/kernel        weight_names = ["sequential/fc1/kernel", ...]

Kernels are (in, out) and are transposed once. ``Dense`` starts a layer and its activation
tags it; a ``BatchNormalization`` is folded exactly (inference form) into the preceding
``Dense`` when that one is linear, else into the next ``Dense``'s inputs; a separate
``Activation`` (or ``ReLU``/``LeakyReLU``/``ELU``/``Softmax``) layer is applied to the open
Dense; ``Dropout``-like, ``Flatten`` and ``InputLayer`` layers are skipped. Any other layer
class is read by the DAG reader, which raises :class:`~modgraph.errors.UnsupportedOpError`
listing every unsupported layer and the supported classes. This chain reader reads a Sequential
model or a functional plain chain (each layer's inbound node is the layer listed before it) of
the classes above; anything else (convs, pools, Add, Concatenate, branches) is read as a
:class:`~modgraph.dag.DagNetwork` by :mod:`modgraph.io.keras_dag`. ``.keras`` archives share the
model-config part (:mod:`modgraph.io.keras_zip`).

Examples
--------
>>> import json, h5py, numpy as np, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "k.h5"
>>> with h5py.File(path, "w") as f:
...     f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"layers": [
...         {"class_name": "Dense", "config": {"name": "fc1", "activation": "tanh", "use_bias": True}}]}})
...     g = f.create_group("model_weights/fc1")
...     g.attrs["weight_names"] = ["fc1/kernel:0", "fc1/bias:0"]
...     g["fc1/kernel:0"] = np.array([[1.0], [2.0]]); g["fc1/bias:0"] = np.array([0.5])
...     f["model_weights"].attrs["layer_names"] = ["fc1"]
>>> net = read_keras_h5(path)
>>> net.layers[0].dense().tolist(), net.layers[0].activation, net.source_format
([[1.0, 2.0]], 'tanh', 'keras-h5')
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from modgraph.errors import FormatError, UnsupportedOpError
from modgraph.io._chain import Chain, dense_to_csr
from modgraph.io.hdf5 import isolated, read_hdf5_file
from modgraph.io.limits import SizeGuard
from modgraph.io.keras_dag import dag_from_layers, history_names, needs_dag
from modgraph.io.registry import HDF5_MAGIC, Reader, has_hdf5_magic, register_reader
from modgraph.network import LayeredNetwork

__all__ = ["read_keras_h5", "SUPPORTED_LAYERS"]

_ACTIVATIONS = {"relu": ("relu", 0.0), "sigmoid": ("sigmoid", 0.0), "tanh": ("tanh", 0.0),
                "softmax": ("softmax", 0.0), "log_softmax": ("log_softmax", 0.0), "elu": ("elu", 1.0),
                "leaky_relu": ("leaky_relu", 0.2)}    # keras.activations.leaky_relu: negative_slope=0.2
_SKIPPED = {"InputLayer", "Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
            "Flatten", "ActivityRegularization"}
_ACTIVATION_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "Softmax": "softmax"}
#: Keras layer classes the reader understands.
SUPPORTED_LAYERS = tuple(sorted(_SKIPPED | set(_ACTIVATION_LAYERS) | {"Dense", "BatchNormalization", "Activation"}))


def read_keras_h5(path) -> LayeredNetwork:
    """Read a Keras 2 or Keras 3 ``.h5`` model file (a DagNetwork unless a Dense chain); defects raise
    :class:`FormatError`."""
    return isolated(path, lambda: read_hdf5_file(path, _read, expected="readable Keras model groups"))


def _attr(obj, name):
    v = obj.attrs.get(name)
    return v.decode() if isinstance(v, bytes) else v


def _read(f: h5py.File, path: Path) -> LayeredNetwork:
    raw = _attr(f, "model_config")
    if raw is None and _keras3_weights(f):
        raise FormatError(path, "/layers", "a Keras model file (model.save('m.h5') or model.save('m.keras'))",
                          "a Keras 3 weights-only file (model.save_weights('*.weights.h5')): it holds the weights "
                          "but not the layer order, classes or activations; save the whole model and load that")
    if raw is None:
        raise FormatError(path, "/ attribute 'model_config'", "a Keras model file (model.save('m.h5'))",
                          "a weights-only file (model.save_weights) without the model's layer configuration; "
                          "save the whole model and load that")
    root = f["model_weights"] if isinstance(f.get("model_weights"), h5py.Group) else f
    meta = {"keras_version": _attr(f, "keras_version"), "backend": _attr(f, "backend")}
    guard = SizeGuard(path)
    return network_from_config(raw, "/ attribute 'model_config'",
                               lambda kind, cfg, place: _weights(root, cfg, guard, place), path, meta, "keras-h5")


def network_from_config(raw_config, where: str, weights_of, path: Path, meta: dict,
                        source_format: str) -> LayeredNetwork:
    """The chain described by a model config (JSON text), with weights from ``weights_of(kind, cfg, place)``
    (a dict of short names, ``kernel``, ``bias``, ``gamma``, ... to arrays)."""
    try:
        config = json.loads(raw_config)
        layers = config["config"]["layers"]
        model_name = config["config"].get("name")
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise FormatError(path, where, "JSON with config.layers", f"{err}") from err
    if not isinstance(layers, list):
        raise FormatError(path, where, "config.layers: a list of layers", repr(layers)[:80])
    for i, layer in enumerate(layers):
        if (not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str)
                or not isinstance(layer.get("config", {}), dict)):
            raise FormatError(path, f"model_config layer {i}", "a layer with a class_name string and a config object",
                              repr(layer)[:80])
    if needs_dag(config["config"], layers, SUPPORTED_LAYERS):        # convs, branches: a DagNetwork
        return dag_from_layers(config["config"], layers, weights_of, path, meta, source_format)
    _check_plain_chain(config["config"], layers, path)
    chain = Chain(None, path, "input", None)
    for i, layer in enumerate(layers):
        _apply(chain, layer, weights_of, path, i)
    chain.finish()
    meta = {"keras": {**meta, "model": model_name, "layers": [l.get("config", {}).get("name") for l in layers]}}
    return LayeredNetwork(chain.layers(), metadata=meta, source=str(path), source_format=source_format)


def _check_plain_chain(cfg: dict, layers: list, path: Path) -> None:
    """A functional model must be a plain chain: each layer fed by the one listed before it."""
    if "input_layers" not in cfg:                  # Sequential: a chain by construction
        return
    names = [l.get("config", {}).get("name", l.get("name")) if isinstance(l, dict) else None for l in layers]
    for i, layer in enumerate(layers):
        inbound = _history_names(layer.get("inbound_nodes", []) if isinstance(layer, dict) else [])
        expected = [names[i - 1]] if i else []
        if inbound != expected:
            raise FormatError(path, f"model_config layer {i} {names[i]!r}", "a plain chain of layers (input from "
                              + (repr(expected[0]) if expected else "nothing") + ")", f"inputs {inbound}")
    outputs = _history_names(cfg.get("output_layers", []))
    if outputs != names[-1:]:
        raise FormatError(path, "model_config output_layers", f"the last layer {names[-1]!r}", str(outputs))


_history_names = history_names


def _apply(chain: Chain, layer: dict, weights_of, path: Path, i: int) -> None:
    kind, cfg = layer["class_name"], layer.get("config", {})
    place = f"model_config layer {i} {cfg.get('name')!r} ({kind})"
    if kind in _SKIPPED:
        return
    if kind == "Dense":
        w = weights_of(kind, cfg, place)
        if "kernel" not in w or w["kernel"].ndim != 2:
            raise FormatError(path, place, "a 2-D kernel (in, out)", f"weights {sorted(w)}")
        kernel = w["kernel"]
        if 0 in kernel.shape:                # units without a stored value: nothing to connect, memory per unit
            raise FormatError(path, place, "a kernel with at least one input and one output", f"shape {kernel.shape}")
        bias = w["bias"] if "bias" in w else np.zeros(kernel.shape[1], kernel.dtype)
        if bias.shape != (kernel.shape[1],):
            raise FormatError(path, f"{place} bias", f"shape ({kernel.shape[1]},)", f"shape {bias.shape}")
        chain.start_layer(dense_to_csr(kernel.T), bias.astype(np.float64), place)
        _activate(chain, cfg.get("activation", "linear"), place, path)
    elif kind == "BatchNormalization":
        w = weights_of(kind, cfg, place)
        n = w["moving_mean"].shape[0] if "moving_mean" in w else None
        if n is None or "moving_variance" not in w or cfg.get("axis", -1) not in (-1, 1, [-1], [1]):
            raise FormatError(path, place, "moving_mean and moving_variance over the last axis",
                              f"weights {sorted(w)}, axis {cfg.get('axis')}")
        gamma, beta = w.get("gamma", np.ones(n)), w.get("beta", np.zeros(n))
        if any(a.shape != (n,) for a in (gamma, beta, w["moving_variance"])):
            raise FormatError(path, place, f"gamma, beta, moving_mean, moving_variance of shape ({n},)",
                              f"shapes {[a.shape for a in (gamma, beta, w['moving_mean'], w['moving_variance'])]}")
        var = w["moving_variance"].astype(np.float64) + cfg.get("epsilon", 1e-3)
        if np.any(var <= 0):
            raise FormatError(path, f"{place} moving_variance", "variances with var + epsilon > 0",
                              f"{int((var <= 0).sum())} non-positive value(s)")
        k = gamma.astype(np.float64) / np.sqrt(var)
        chain.affine(k, beta - w["moving_mean"] * k, place)
    elif kind == "Activation":
        _activate(chain, cfg.get("activation"), place, path)
    elif kind in _ACTIVATION_LAYERS:
        name = _ACTIVATION_LAYERS[kind]
        alpha = cfg.get("negative_slope", cfg.get("alpha", 0.3 if kind == "LeakyReLU" else 1.0))
        plain = cfg.get("max_value") is None and not cfg.get("negative_slope", 0.0) and not cfg.get("threshold", 0.0)
        if kind == "ReLU" and not plain:
            raise FormatError(path, place, "a plain ReLU (no max_value, negative_slope, threshold)", str(cfg))
        chain.activate(name, alpha, place)
    else:
        raise UnsupportedOpError(path, place, kind, SUPPORTED_LAYERS)


def _activate(chain: Chain, activation, place: str, path: Path) -> None:
    if isinstance(activation, dict):                  # serialised form {"class_name": "function", "config": "relu"}
        inner = activation.get("config")
        activation = inner if isinstance(inner, str) else activation.get("class_name")
    if activation in (None, "linear"):
        return
    if activation not in _ACTIVATIONS:
        raise FormatError(path, f"{place} activation", "one of linear, " + ", ".join(sorted(_ACTIVATIONS)),
                          repr(activation))
    chain.activate(*_ACTIVATIONS[activation], place)


def _weights(root: h5py.Group, cfg: dict, guard: SizeGuard, place: str) -> dict:
    """A layer's arrays by short name (``kernel``, ``bias``, ``gamma``, ...), from ``weight_names``;
    each dataset's declared size is checked against its stored bytes before it is read."""
    path = guard.path
    name = cfg.get("name")
    group = root.get(name) if isinstance(name, str) else None
    if not isinstance(group, h5py.Group):
        raise FormatError(path, f"{root.name.rstrip('/')}/{name}", f"the weight group of {place}", "missing")
    out = {}
    for wname in group.attrs.get("weight_names", []):
        wname = wname.decode() if isinstance(wname, bytes) else str(wname)
        ds = group.get(wname)
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f":
            raise FormatError(path, f"{group.name}/{wname}", "a floating point dataset",
                              "missing" if ds is None else f"{type(ds).__name__} {getattr(ds, 'dtype', '')}")
        guard.hdf5(ds)
        out[wname.rsplit("/", 1)[-1].split(":")[0]] = ds[()]
    return out


def _keras3_weights(f: h5py.File) -> bool:
    """The Keras 3 ``save_weights`` layout: ``/layers/<key>/vars`` groups and a root ``/vars``."""
    layers = f.get("layers")
    return (isinstance(layers, h5py.Group) and isinstance(f.get("vars"), h5py.Group)
            and any(isinstance(g, h5py.Group) and isinstance(g.get("vars"), h5py.Group) for g in layers.values()))


def _sniff(path: Path, head: bytes) -> bool:
    if not head.startswith(HDF5_MAGIC):
        return False
    try:
        with h5py.File(path, "r") as f:
            return ("model_config" in f.attrs or "keras_version" in f.attrs or "layer_names" in f.attrs
                    or _keras3_weights(f))
    except Exception:      # damaged HDF5: the modgraph-hdf5 reader (asked first) explains it
        return False


register_reader(Reader("keras-h5", "Keras 2/3 HDF5 model file (model.save('m.h5'))", _sniff, read_keras_h5,
                       native=has_hdf5_magic))
