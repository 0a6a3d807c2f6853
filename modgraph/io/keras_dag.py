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

from pathlib import Path

from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.errors import FormatError, UnsupportedOpError
from modgraph.io.keras_layers import HANDLERS
from modgraph.io.limits import SizeGuard

__all__ = ["dag_from_layers", "DAG_LAYERS", "DAG_ONLY", "needs_dag", "is_plain_chain", "history_names"]

#: Layer classes only the DAG reader reads (a model with any of them is read as a DAG).
DAG_ONLY = {"Conv2D", "DepthwiseConv2D", "Add", "Concatenate", "Multiply", "MaxPooling2D", "AveragePooling2D",
            "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D", "SpatialDropout2D"}
#: Keras layer classes the DAG reader understands.
DAG_LAYERS = tuple(sorted(set(HANDLERS) | {"InputLayer"}))


def history_names(obj) -> list:
    """Layer names an inbound-node structure refers to (Keras 3 keras_history, Keras 2 [name, i, j, ...])."""
    if isinstance(obj, dict):
        if "keras_history" in obj:           # [layer name, node index, tensor index]
            h = obj["keras_history"]
            ok = isinstance(h, list) and h and isinstance(h[0], str)
            return [h[0] if ok else f"<keras_history {str(h)[:60]}>"]      # not a layer name: the caller refuses it
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
        # a channel count declared in the config costs memory per channel: bounded by the file's size
        budget = SizeGuard(path).unit_budget(path.stat().st_size if path.is_file() else 0)
        self.b = DagBuilder(source=str(path), copy=False, max_units=budget)
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
                self.out[cfg["name"]] = HANDLERS[kind](self, cfg, [self.out[n] for n in inbound], place)
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

    def weights(self, kind, cfg, place, names):
        """A layer's arrays by short name (Keras 2's ``depthwise_kernel`` read as ``kernel``)."""
        w = self.weights_of(kind, cfg, place)
        if "depthwise_kernel" in w and "kernel" not in w:
            w["kernel"] = w.pop("depthwise_kernel")
        if any(n not in w for n in names):
            self.fail(place, "weights " + ", ".join(names), f"weights {sorted(w)}")
        return w


def dag_from_layers(cfg: dict, layers: list, weights_of, path: Path, meta: dict, source_format: str) -> DagNetwork:
    """The DAG of a Keras model config (``cfg`` = ``config["config"]``), weights from
    ``weights_of(kind, cfg, place)`` (short name -> array)."""
    return _Walk(cfg, layers, weights_of, Path(path)).run(meta, source_format)
