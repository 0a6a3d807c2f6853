"""One small handler per Keras layer class, for :mod:`modgraph.io.keras_dag` (channels_last -> NCHW).

``HANDLERS[class_name](walk, cfg, inputs, place)`` turns one layer into
:class:`~modgraph.dag_builder.DagBuilder` calls and returns the tensor it makes; ``walk`` gives
the builder (``walk.b``), the file (``walk.path``), ``walk.fail`` and ``walk.weights``. The
conversions are listed in :mod:`modgraph.io.keras_dag`.
"""
from __future__ import annotations

import math

import numpy as np

from modgraph.errors import FormatError

__all__ = ["HANDLERS", "IDENTITY_LAYERS", "ACTIVATION_LAYERS", "KERAS_ACTIVATIONS"]

IDENTITY_LAYERS = {"Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
                   "SpatialDropout2D", "ActivityRegularization"}
ACTIVATION_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "Softmax": "softmax"}
KERAS_ACTIVATIONS = {"relu": ("relu", 0.0), "sigmoid": ("sigmoid", 0.0), "tanh": ("tanh", 0.0),
                     "softmax": ("softmax", 0.0), "log_softmax": ("log_softmax", 0.0), "elu": ("elu", 1.0),
                     "leaky_relu": ("leaky_relu", 0.2)}    # keras.activations.leaky_relu: negative_slope=0.2


def _pair(w, v, place, what) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(a, int) for a in v):
        return (int(v[0]), int(v[1]))
    raise FormatError(w.path, place, f"{what} as an int or a pair of ints", repr(v))


def same_pads(spatial, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """TensorFlow 'same' padding (h_begin, w_begin, h_end, w_end): the odd pixel at the end."""
    begin, end = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return (begin[0], begin[1], end[0], end[1])


def _padding(w, cfg, spatial, kernel, strides, dil, place):
    pad = cfg.get("padding", "valid")
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        return same_pads(spatial, kernel, strides, dil)
    w.fail(place, "padding 'same' or 'valid'", repr(pad))


def activation(w, t, act, place):
    """The ``activation`` of a Dense/Conv layer or an ``Activation`` layer (``linear``: none)."""
    if isinstance(act, dict):                      # {"class_name": "function", "config": "relu"}
        inner = act.get("config")
        act = inner if isinstance(inner, str) else act.get("class_name")
    if act in (None, "linear"):
        return t
    if act not in KERAS_ACTIVATIONS:
        w.fail(f"{place} activation", "one of linear, " + ", ".join(sorted(KERAS_ACTIVATIONS)), repr(act))
    name, alpha = KERAS_ACTIVATIONS[act]
    return w.b.activation(t, name, alpha=alpha)


def _channels_last(w, cfg, place):
    fmt = cfg.get("data_format", "channels_last") or "channels_last"
    if fmt != "channels_last":
        w.fail(place, "data_format channels_last", repr(fmt))


def _one(w, xs, place):
    if len(xs) != 1:
        w.fail(place, "one input", f"{len(xs)} inputs")
    return xs[0]


def _spatial(w, x, place):
    if x.spatial is None:
        w.fail(place, "a 4-D (N, H, W, C) input", "a 2-D tensor")
    return x


def _add(w, cfg, xs, place):
    return w.b.add(cfg["name"], xs)


def _multiply(w, cfg, xs, place):
    if len(xs) != 2:
        w.fail(place, "two inputs", f"{len(xs)} inputs")
    return w.b.mul(cfg["name"], *xs)


def _concatenate(w, cfg, xs, place):
    rank = 4 if xs[0].spatial is not None else 2
    if cfg.get("axis", -1) not in (-1, rank - 1):
        w.fail(place, f"concatenation on the channel axis (-1 or {rank - 1})", f"axis {cfg.get('axis')}")
    return w.b.concat(xs)


def _identity(w, cfg, xs, place):
    return w.b.identity(_one(w, xs, place))


def _dense(w, cfg, xs, place):
    x = _one(w, xs, place)
    ws = w.weights("Dense", cfg, place, ["kernel"])
    k = np.asarray(ws["kernel"])
    if k.ndim != 2:
        w.fail(place, "a 2-D kernel (in, out)", f"shape {k.shape}")
    if x.spatial is not None:
        w.fail(place, "a Dense on a 2-D tensor (a Flatten or global pool before it)",
               f"a 4-D tensor of spatial size {x.spatial}")
    return activation(w, w.b.dense(cfg["name"], x, k.T, ws.get("bias")), cfg.get("activation"), place)


def _conv(w, cfg, xs, place, depthwise=False):
    x = _spatial(w, _one(w, xs, place), place)
    _channels_last(w, cfg, place)
    ws = w.weights("DepthwiseConv2D" if depthwise else "Conv2D", cfg, place, ["kernel"])
    k = np.asarray(ws["kernel"])
    if k.ndim != 4:
        w.fail(place, "a 4-D kernel (kh, kw, in, out)", f"shape {k.shape}")
    if not depthwise:
        weight, group = k.transpose(3, 2, 0, 1), int(cfg.get("groups", 1) or 1)
    else:
        if k.shape[2] != x.n_channels:
            w.fail(place + " kernel", f"{x.n_channels} input channels (axis 2)", f"shape {k.shape}")
        weight, group = k.reshape(k.shape[0], k.shape[1], -1).transpose(2, 0, 1)[:, None], x.n_channels
    strides = _pair(w, cfg.get("strides", 1), place, "strides")
    dil = _pair(w, cfg.get("dilation_rate", 1), place, "dilation_rate")
    pads = _padding(w, cfg, x.spatial, weight.shape[2:], strides, dil, place)
    t = w.b.conv(cfg["name"], x, weight, ws.get("bias"), strides=strides, pads=pads, dilations=dil, group=group)
    return activation(w, t, cfg.get("activation"), place)


def _batch_norm(w, cfg, xs, place):
    x = _one(w, xs, place)
    rank = 4 if x.spatial is not None else 2
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, rank - 1):
        w.fail(place, f"normalisation over the channel axis (-1 or {rank - 1})", f"axis {cfg.get('axis')}")
    ws = w.weights("BatchNormalization", cfg, place, ["moving_mean", "moving_variance"])
    n, eps = x.n_channels, float(cfg.get("epsilon", 1e-3))
    var = np.asarray(ws["moving_variance"], np.float64)
    if var.shape == (n,) and np.any(var + eps <= 0):
        w.fail(f"{place} moving_variance", "variances with var + epsilon > 0",
               f"{int((var + eps <= 0).sum())} non-positive value(s)")
    return w.b.batch_norm(x, ws.get("gamma", np.ones(n)), ws.get("beta", np.zeros(n)), ws["moving_mean"],
                          ws["moving_variance"], eps=eps, name=cfg["name"])


def _activation_layer(w, cfg, xs, place):
    return activation(w, _one(w, xs, place), cfg.get("activation"), place)


def _named_activation(kind):
    def handler(w, cfg, xs, place):
        x = _one(w, xs, place)
        if kind == "ReLU" and (cfg.get("max_value") is not None or cfg.get("negative_slope", 0.0)
                               or cfg.get("threshold", 0.0)):
            w.fail(place, "a plain ReLU (no max_value, negative_slope, threshold)", str(cfg))
        alpha = cfg.get("negative_slope", cfg.get("alpha", 0.3 if kind == "LeakyReLU" else 1.0))
        return w.b.activation(x, ACTIVATION_LAYERS[kind], alpha=float(alpha))
    return handler


def _flatten(w, cfg, xs, place):
    x = _one(w, xs, place)
    if x.spatial is None:
        return x
    _channels_last(w, cfg, place)
    return w.b.flatten(x, order="HWC")                # channels_last: features in H, W, C order


def _pool(kind):
    def handler(w, cfg, xs, place):
        x = _spatial(w, _one(w, xs, place), place)
        _channels_last(w, cfg, place)
        kernel = _pair(w, cfg.get("pool_size", 2), place, "pool_size")
        strides = kernel if cfg.get("strides") is None else _pair(w, cfg["strides"], place, "strides")
        pads = _padding(w, cfg, x.spatial, kernel, strides, (1, 1), place)
        if kind == "max":                              # 'same': the padding never wins a max
            return w.b.max_pool(x, kernel, strides=strides, pads=pads)
        return w.b.avg_pool(x, kernel, strides=strides, pads=pads, count_include_pad=False)
    return handler


def _global_pool(kind):
    def handler(w, cfg, xs, place):
        x = _spatial(w, _one(w, xs, place), place)
        _channels_last(w, cfg, place)
        t = (w.b.global_avg_pool if kind == "avg" else w.b.global_max_pool)(x)
        return t if cfg.get("keepdims", False) else w.b.flatten(t, order="HWC")
    return handler


def _zero_padding(w, cfg, xs, place):
    x = _spatial(w, _one(w, xs, place), place)
    _channels_last(w, cfg, place)
    p = cfg.get("padding", 1)
    p = ((p, p), (p, p)) if isinstance(p, int) else p
    if not (isinstance(p, (list, tuple)) and len(p) == 2):
        w.fail(place, "padding ((top, bottom), (left, right))", repr(p))
    (top, bottom), (left, right) = [_pair(w, a, place, "padding") for a in p]
    return w.b.pad(x, (top, left, bottom, right))


#: Keras class name -> handler(walk, cfg, inputs, place).
HANDLERS = {
    "Add": _add, "Multiply": _multiply, "Concatenate": _concatenate, "Dense": _dense,
    "Conv2D": _conv, "DepthwiseConv2D": lambda w, cfg, xs, place: _conv(w, cfg, xs, place, depthwise=True),
    "BatchNormalization": _batch_norm, "Activation": _activation_layer, "Flatten": _flatten,
    "MaxPooling2D": _pool("max"), "AveragePooling2D": _pool("avg"),
    "GlobalAveragePooling2D": _global_pool("avg"), "GlobalMaxPooling2D": _global_pool("max"),
    "ZeroPadding2D": _zero_padding,
    **{k: _identity for k in IDENTITY_LAYERS}, **{k: _named_activation(k) for k in ACTIVATION_LAYERS},
}
