"""Keras models that are not a chain of Dense layers, as a :class:`~modgraph.dag.DagNetwork`.

The graph comes from the model config (``model_config`` of a ``.h5`` file, ``config.json`` of a
``.keras`` archive): a functional model's layers name their inputs in ``inbound_nodes`` (Keras 3
``keras_history``, Keras 2 ``[name, node, tensor, kwargs]``); a Sequential model is a chain in list
order. Each layer becomes :class:`~modgraph.dag_builder.DagBuilder` calls; unit groups are named
after the layers (``"conv1:7"`` is output channel 7 of layer ``conv1``).

Keras tensors are channels_last (N, H, W, C); the DagNetwork is NCHW, so its ``forward`` takes
``x.transpose(0, 3, 1, 2)`` of a Keras image batch. The conversions:

- ``Conv2D`` kernel (kh, kw, C/g, O) -> (O, C/g, kh, kw); ``DepthwiseConv2D`` kernel
  (kh, kw, C, m) -> (C*m, 1, kh, kw), group C (output channel c*m + j, Keras' order);
- ``padding="same"``: TensorFlow's rule, total = max((ceil(n/s) - 1)*s + (k-1)*d + 1 - n, 0),
  begin = total // 2, the odd one at the end; ``valid``: none;
- ``Flatten`` of a 4-D tensor: features in H, W, C order (``flatten(order="HWC")``);
- ``GlobalAveragePooling2D``/``GlobalMaxPooling2D`` (``keepdims=False``): a 1 x 1 pool, flattened;
- ``BatchNormalization`` (axis -1, the channels): inference form, epsilon from the config;
- ``Concatenate`` on the channel axis only; ``Add`` of equal shapes; ``Multiply`` of two tensors;
- pools ``same``: max ignores the padding, average divides by the window's input cells.

Any other layer class, a layer used twice (shared weights), a ``channels_first`` layer, a Dense
on a 4-D tensor or a cycle raises :class:`~modgraph.errors.FormatError` naming the layer.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.errors import FormatError, UnsupportedOpError

__all__ = ["dag_from_layers", "DAG_LAYERS", "DAG_ONLY", "needs_dag", "is_plain_chain", "history_names"]

_IDENTITY = {"Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
             "SpatialDropout2D", "ActivityRegularization"}
_ACT_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "Softmax": "softmax"}
_ACTIVATIONS = {"relu": ("relu", 0.0), "sigmoid": ("sigmoid", 0.0), "tanh": ("tanh", 0.0),
                "softmax": ("softmax", 0.0), "log_softmax": ("log_softmax", 0.0), "elu": ("elu", 1.0),
                "leaky_relu": ("leaky_relu", 0.2)}
#: Layer classes only the DAG reader reads (a model with any of them is read as a DAG).
DAG_ONLY = {"Conv2D", "DepthwiseConv2D", "Add", "Concatenate", "Multiply", "MaxPooling2D", "AveragePooling2D",
            "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "SpatialDropout2D"}
#: Keras layer classes the DAG reader understands.
DAG_LAYERS = tuple(sorted(DAG_ONLY | _IDENTITY | set(_ACT_LAYERS)
                          | {"InputLayer", "Dense", "BatchNormalization", "Activation", "Flatten"}))


def history_names(obj) -> list:
    """Layer names an inbound-node structure refers to (Keras 3 keras_history, Keras 2 [name, i, j, ...])."""
    if isinstance(obj, dict):
        if "keras_history" in obj:
            return [obj["keras_history"][0]]
        return [n for v in obj.values() for n in history_names(v)]
    if isinstance(obj, list):
        if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int):
            return [obj[0]]
        return [n for v in obj for n in history_names(v)]
    return []


def _name(layer) -> str | None:
    return layer.get("config", {}).get("name", layer.get("name")) if isinstance(layer, dict) else None


def is_plain_chain(cfg: dict, layers: list) -> bool:
    """A Sequential model, or a functional one whose every layer reads the one listed before it."""
    if "input_layers" not in cfg:
        return True
    names = [_name(l) for l in layers]
    for i, layer in enumerate(layers):
        inbound = history_names(layer.get("inbound_nodes", []) if isinstance(layer, dict) else [])
        if inbound != ([names[i - 1]] if i else []):
            return False
    return history_names(cfg.get("output_layers", [])) == names[-1:]


def needs_dag(cfg: dict, layers: list, chain_layers) -> bool:
    """True when the model is not a chain of Dense layers: a class outside ``chain_layers`` (the
    dense-chain reader's classes; an unknown class is refused here, listing every class read) or branches."""
    return (any(isinstance(l, dict) and l.get("class_name") not in chain_layers for l in layers)
            or not is_plain_chain(cfg, layers))


def _pair(v, place, path, what) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(a, int) for a in v):
        return (int(v[0]), int(v[1]))
    raise FormatError(path, place, f"{what} as an int or a pair of ints", repr(v))


def _same_pads(spatial, kernel, strides, dilations) -> tuple[int, int, int, int]:
    """TensorFlow 'same' padding (h_begin, w_begin, h_end, w_end)."""
    begin, end = [], []
    for n, k, s, d in zip(spatial, kernel, strides, dilations):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return (begin[0], begin[1], end[0], end[1])


def _input_shape(layer: dict, cfg: dict):
    c = layer.get("config", {})
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(c.get(key), list):
            return c[key]
    if isinstance(cfg.get("build_input_shape"), list):
        return cfg["build_input_shape"]
    return None


class _Walk:
    def __init__(self, cfg, layers, weights_of, path: Path):
        self.cfg, self.layers, self.weights_of, self.path = cfg, layers, weights_of, path
        self.b = DagBuilder(source=str(path), copy=False)
        self.out: dict[str, object] = {}

    def fail(self, place, expected, found):
        raise FormatError(self.path, place, expected, found)

    # -- graph order ---------------------------------------------------------------------------
    def ordered(self) -> list[tuple[int, dict, list]]:
        """(index, layer, inbound layer names) in a topological order; a cycle is refused."""
        seq = "input_layers" not in self.cfg
        names = [_name(l) for l in self.layers]
        for i, (layer, name) in enumerate(zip(self.layers, names)):
            if not isinstance(layer, dict) or "class_name" not in layer or not isinstance(name, str):
                self.fail(f"model_config layer {i}", "a layer with class_name and config.name", repr(layer)[:80])
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            self.fail(f"model_config layer {names.index(dup)} {dup!r}", "unique layer names", "a duplicate")
        inbound = {}
        for i, (layer, name) in enumerate(zip(self.layers, names)):
            nodes = layer.get("inbound_nodes", [])
            if not seq and isinstance(nodes, list) and len(nodes) > 1:
                self.fail(f"model_config layer {i} {name!r} ({layer['class_name']})",
                          "a layer called once", f"{len(nodes)} calls (a shared layer)")
            inbound[name] = ([names[i - 1]] if i and layer["class_name"] != "InputLayer" else []) if seq \
                else history_names(nodes)
            for src in inbound[name]:
                if src not in names:
                    self.fail(f"model_config layer {i} {name!r}", "inputs that are layers of the model",
                              f"input {src!r}")
        done, order, state = set(), [], {}
        index = {n: i for i, n in enumerate(names)}
        for start in names:                      # iterative depth-first topological sort
            stack = [(start, iter(inbound[start]))]
            if start in done:
                continue
            state[start] = "open"
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    done.add(node)
                    state[node] = "done"
                    order.append(node)
                elif state.get(nxt) == "open":
                    self.fail(f"model_config layer {index[nxt]} {nxt!r}", "an acyclic graph of layers",
                              f"a cycle through {node!r}")
                elif nxt not in done:
                    state[nxt] = "open"
                    stack.append((nxt, iter(inbound[nxt])))
        return [(index[n], self.layers[index[n]], inbound[n]) for n in order]

    # -- the walk ----------------------------------------------------------------------------------
    def run(self, meta: dict, source_format: str) -> DagNetwork:
        order = self.ordered()
        unsupported = [(i, l) for i, l, _ in order if l["class_name"] not in DAG_LAYERS]
        if unsupported:
            i, l = unsupported[0]
            others = "".join(f", layer {j} {_name(m)!r} ({m['class_name']})" for j, m in unsupported[1:])
            raise UnsupportedOpError(self.path, f"model_config layer {i} {_name(l)!r} ({l['class_name']})" + others,
                                     l["class_name"], DAG_LAYERS)
        seq = "input_layers" not in self.cfg
        for i, layer, inbound in order:
            kind, cfg = layer["class_name"], layer.get("config", {})
            place = f"model_config layer {i} {cfg.get('name')!r} ({kind})"
            try:
                if not inbound:
                    self._input(layer, place)
                    if kind == "InputLayer":
                        continue
                    inbound = ["__input__"]
                self.out[cfg["name"]] = self._layer(kind, cfg, [self.out[n] for n in inbound], place)
            except FormatError as err:
                if err.path == str(self.path) and err.place.startswith("model_config"):
                    raise
                raise FormatError(self.path, f"{place}: {err.place}", err.expected, err.found) from err
        outs = history_names(self.cfg.get("output_layers", [])) if not seq else [_name(self.layers[-1])]
        if not outs:
            self.fail("model_config output_layers", "at least one output layer", "none")
        used = {n for _, _, inb in order for n in inb} | set(outs)
        for i, layer, _ in order:
            if _name(layer) not in used:
                self.fail(f"model_config layer {i} {_name(layer)!r}", "a layer that an output depends on",
                          "a layer no other layer or output reads")
        outputs = [self.out[n] for n in outs]
        meta = {"keras": {**meta, "model": self.cfg.get("name"), "layers": [_name(l) for l in self.layers],
                          "data_format": "channels_last"},
                "input_layout": "NCHW (forward takes a Keras NHWC batch transposed with x.transpose(0, 3, 1, 2))"
                if self.out["__input__"].spatial is not None else "features"}
        return self.b.build(outputs, metadata=meta, source_format=source_format)

    def _input(self, layer, place):
        if "__input__" in self.out:
            self.fail(place, "one graph input", "a second input layer")
        shape = _input_shape(layer, self.cfg)
        if shape is None:
            self.fail(place, "the input shape (batch_shape / batch_input_shape)", "none")
        dims = shape[1:]
        if len(dims) == 3 and all(isinstance(d, int) for d in dims):
            t = self.b.input(_name(layer), channels=dims[2], spatial=(dims[0], dims[1]))
        elif len(dims) == 1 and isinstance(dims[0], int):
            t = self.b.input(_name(layer), channels=dims[0])
        else:
            self.fail(place, "an input of static shape (H, W, C) or (features,)", f"batch shape {shape}")
        self.out["__input__"] = t
        if layer["class_name"] == "InputLayer":
            self.out[_name(layer)] = t

    def _weights(self, kind, cfg, place, names):
        w = self.weights_of(kind, cfg, place)
        for alias, name in (("depthwise_kernel", "kernel"),):
            if alias in w and name not in w:
                w[name] = w.pop(alias)
        missing = [n for n in names if n not in w]
        if missing:
            self.fail(place, "weights " + ", ".join(names), f"weights {sorted(w)}")
        return w

    def _activation(self, t, act, place):
        if isinstance(act, dict):                      # {"class_name": "function", "config": "relu"}
            inner = act.get("config")
            act = inner if isinstance(inner, str) else act.get("class_name")
        if act in (None, "linear"):
            return t
        if act not in _ACTIVATIONS:
            self.fail(f"{place} activation", "one of linear, " + ", ".join(sorted(_ACTIVATIONS)), repr(act))
        name, alpha = _ACTIVATIONS[act]
        return self.b.activation(t, name, alpha=alpha)

    def _channels_last(self, cfg, place):
        fmt = cfg.get("data_format", "channels_last") or "channels_last"
        if fmt != "channels_last":
            self.fail(place, "data_format channels_last", repr(fmt))

    def _one(self, xs, place):
        if len(xs) != 1:
            self.fail(place, "one input", f"{len(xs)} inputs")
        return xs[0]

    def _layer(self, kind, cfg, xs, place):
        b = self.b
        if kind in ("Add", "Concatenate", "Multiply"):
            if kind == "Concatenate":
                rank = 4 if xs[0].spatial is not None else 2
                if cfg.get("axis", -1) not in (-1, rank - 1):
                    self.fail(place, f"concatenation on the channel axis (-1 or {rank - 1})",
                              f"axis {cfg.get('axis')}")
                return b.concat(xs)
            if kind == "Multiply":
                if len(xs) != 2:
                    self.fail(place, "two inputs", f"{len(xs)} inputs")
                return b.mul(cfg["name"], *xs)
            return b.add(cfg["name"], xs)
        x = self._one(xs, place)
        if kind in _IDENTITY:
            return b.identity(x)
        if kind == "Dense":
            w = self._weights(kind, cfg, place, ["kernel"])
            k = np.asarray(w["kernel"])
            if k.ndim != 2:
                self.fail(place, "a 2-D kernel (in, out)", f"shape {k.shape}")
            if x.spatial is not None:
                self.fail(place, "a Dense on a 2-D tensor (a Flatten or global pool before it)",
                          f"a 4-D tensor of spatial size {x.spatial}")
            t = b.dense(cfg["name"], x, k.T, w.get("bias"))
            return self._activation(t, cfg.get("activation"), place)
        if kind in ("Conv2D", "DepthwiseConv2D"):
            self._channels_last(cfg, place)
            if x.spatial is None:
                self.fail(place, "a 4-D (N, H, W, C) input", "a 2-D tensor")
            w = self._weights(kind, cfg, place, ["kernel"])
            k = np.asarray(w["kernel"])
            if k.ndim != 4:
                self.fail(place, "a 4-D kernel (kh, kw, in, out)", f"shape {k.shape}")
            if kind == "Conv2D":
                weight, group = k.transpose(3, 2, 0, 1), int(cfg.get("groups", 1) or 1)
            else:
                if k.shape[2] != x.n_channels:
                    self.fail(place + " kernel", f"{x.n_channels} input channels (axis 2)", f"shape {k.shape}")
                weight = k.reshape(k.shape[0], k.shape[1], -1).transpose(2, 0, 1)[:, None]
                group = x.n_channels
            strides = _pair(cfg.get("strides", 1), place, self.path, "strides")
            dil = _pair(cfg.get("dilation_rate", 1), place, self.path, "dilation_rate")
            pads = self._padding(cfg, x.spatial, weight.shape[2:], strides, dil, place)
            t = b.conv(cfg["name"], x, weight, w.get("bias"), strides=strides, pads=pads, dilations=dil, group=group)
            return self._activation(t, cfg.get("activation"), place)
        if kind == "BatchNormalization":
            rank = 4 if x.spatial is not None else 2
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
            if axis not in (-1, rank - 1):
                self.fail(place, f"normalisation over the channel axis (-1 or {rank - 1})", f"axis {cfg.get('axis')}")
            w = self._weights(kind, cfg, place, ["moving_mean", "moving_variance"])
            n = x.n_channels
            gamma, beta = w.get("gamma", np.ones(n)), w.get("beta", np.zeros(n))
            var = np.asarray(w["moving_variance"], np.float64) + float(cfg.get("epsilon", 1e-3))
            if var.shape == (n,) and np.any(var <= 0):
                self.fail(f"{place} moving_variance", "variances with var + epsilon > 0",
                          f"{int((var <= 0).sum())} non-positive value(s)")
            return b.batch_norm(x, gamma, beta, w["moving_mean"], w["moving_variance"],
                                eps=float(cfg.get("epsilon", 1e-3)), name=cfg["name"])
        if kind == "Activation":
            return self._activation(x, cfg.get("activation"), place)
        if kind in _ACT_LAYERS:
            if kind == "ReLU" and (cfg.get("max_value") is not None or cfg.get("negative_slope", 0.0)
                                   or cfg.get("threshold", 0.0)):
                self.fail(place, "a plain ReLU (no max_value, negative_slope, threshold)", str(cfg))
            alpha = cfg.get("negative_slope", cfg.get("alpha", 0.3 if kind == "LeakyReLU" else 1.0))
            return b.activation(x, _ACT_LAYERS[kind], alpha=float(alpha))
        if kind == "Flatten":
            if x.spatial is None:
                return x
            self._channels_last(cfg, place)
            return b.flatten(x, order="HWC")
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            self._channels_last(cfg, place)
            if x.spatial is None:
                self.fail(place, "a 4-D (N, H, W, C) input", "a 2-D tensor")
            kernel = _pair(cfg.get("pool_size", 2), place, self.path, "pool_size")
            strides = kernel if cfg.get("strides") is None else _pair(cfg["strides"], place, self.path, "strides")
            pads = self._padding(cfg, x.spatial, kernel, strides, (1, 1), place)
            if kind == "MaxPooling2D":
                return b.max_pool(x, kernel, strides=strides, pads=pads)
            return b.avg_pool(x, kernel, strides=strides, pads=pads, count_include_pad=False)
        if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            self._channels_last(cfg, place)
            t = (b.global_avg_pool if kind == "GlobalAveragePooling2D" else b.global_max_pool)(x)
            return t if cfg.get("keepdims", False) else b.flatten(t, order="HWC")
        if kind == "ZeroPadding2D":
            self._channels_last(cfg, place)
            p = cfg.get("padding", 1)
            if isinstance(p, int):
                p = ((p, p), (p, p))
            try:
                (top, bottom), (left, right) = [_pair(a, place, self.path, "padding") for a in p]
            except (TypeError, ValueError):
                self.fail(place, "padding ((top, bottom), (left, right))", repr(p))
            return b.pad(x, (top, left, bottom, right))
        raise UnsupportedOpError(self.path, place, kind, DAG_LAYERS)   # pragma: no cover (checked in run)

    def _padding(self, cfg, spatial, kernel, strides, dil, place):
        pad = cfg.get("padding", "valid")
        if pad == "valid":
            return (0, 0, 0, 0)
        if pad == "same":
            return _same_pads(spatial, kernel, strides, dil)
        self.fail(place, "padding 'same' or 'valid'", repr(pad))


def dag_from_layers(cfg: dict, layers: list, weights_of, path: Path, meta: dict, source_format: str) -> DagNetwork:
    """The DAG of a Keras model config (``cfg`` = ``config["config"]``), weights from
    ``weights_of(kind, cfg, place)`` (short name -> array)."""
    return _Walk(cfg, layers, weights_of, Path(path)).run(meta, source_format)
