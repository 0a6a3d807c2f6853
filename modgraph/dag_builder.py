"""Build a :class:`~modgraph.dag.DagNetwork` op by op, the way a reader walks a file.

Every method takes and returns :class:`Tensor` references; shapes are checked as they chain and
a mismatch raises :class:`~modgraph.errors.FormatError` naming the op, what was expected and what
was found (with ``source``, the file, when the reader gives it). Weights are copied (``copy=True``)
and made read-only at ``build``.

Channel counts that come from a file's declarations rather than from a stored weight (the graph
input's channels, a channel Pad, a Concat that repeats its inputs) cost memory per channel; a
reader passes ``max_units`` (from :meth:`modgraph.io.limits.SizeGuard.unit_budget` of the bytes the
file really stores: ``units_per_value`` (64) per byte plus ``free_units`` (2^20)) and the builder refuses, before allocating, any such count that would take the
channel entries of all its tensors beyond it.

Examples
--------
>>> import numpy as np
>>> b = DagBuilder()
>>> x = b.input("x", channels=1, spatial=(4, 4))
>>> t = b.activation(b.conv("c1", x, np.ones((2, 1, 3, 3)), pads=(1, 1, 1, 1)), "relu")
>>> t = b.dense("fc", b.flatten(b.max_pool(t, (2, 2))), np.ones((3, 8)))
>>> net = b.build(outputs=[t])
>>> net.forward(np.ones((1, 1, 4, 4))).shape, [g.stage for g in net.groups]
((1, 3), [0, 0, 1])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from modgraph.dag import DagNetwork, Step, TensorMap, UnitGroup
from modgraph.dag_ops import conv_out_size, conv_transpose_out_size, pool_out_size
from modgraph.errors import FormatError
from modgraph.network import ACTIVATIONS

__all__ = ["DagBuilder", "Tensor"]


@dataclass(frozen=True)
class Tensor:
    """A reference to one tensor of the network being built (slot = the step that writes it)."""

    slot: int
    n_channels: int
    spatial: tuple[int, int] | None
    flat: bool
    builder: int


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(a) for a in v)


class DagBuilder:
    """Collects groups and steps; :meth:`build` returns the immutable :class:`DagNetwork`."""

    def __init__(self, *, source: str | None = None, copy: bool = True, max_units: int | None = None):
        self.source, self._copy, self._max_units, self._entries = source, copy, max_units, 0
        self._groups: list[dict] = []
        self._steps: list[Step] = []
        self._maps: list[TensorMap] = []
        self._stage: list[int] = []

    # -- bookkeeping ---------------------------------------------------------------------------
    def _fail(self, place, expected, found):
        raise FormatError(self.source, place, expected, found)

    def _map(self, t: Tensor, place: str) -> TensorMap:
        if not isinstance(t, Tensor) or t.builder != id(self):
            self._fail(place, "a Tensor made by this DagBuilder", type(t).__name__)
        return self._maps[t.slot]

    def _claim(self, place: str, n: int) -> None:
        """Refuse ``n`` more channel entries beyond ``max_units`` (checked before they are allocated)."""
        if self._max_units is not None and self._entries + n > self._max_units:
            self._fail(place, f"at most {self._max_units} channel entries in all (the budget "
                       "for what the file stores)", f"{n} more declared here, {self._entries} so far")

    def _push(self, op, inputs, params, m: TensorMap, stage: int, group: int = -1) -> Tensor:
        self._entries += len(m.group)
        self._steps.append(Step(op, tuple(inputs), params, group))
        self._maps.append(m)
        self._stage.append(stage)
        return Tensor(len(self._steps) - 1, m.n_channels, m.spatial, m.flat is not None, id(self))

    def _array(self, a, place, ndim):
        a = np.array(a, copy=self._copy)
        if a.dtype.kind != "f":
            a = a.astype(np.float64)
        if a.ndim != ndim:
            self._fail(place, f"a {ndim}-D array", f"shape {a.shape}")
        if not np.isfinite(a).all():
            self._fail(place, "finite values", f"{int((~np.isfinite(a)).sum())} NaN/Inf value(s)")
        return a

    def _sparse_weight(self, w, m, place):
        """A sparse dense-layer weight kept as CSR (exactly its stored entries, explicit zeros too) where
        its input is plain features; after a flatten (a conv's output) it is used densely, if it is small."""
        w = sp.csr_matrix(w, dtype=w.dtype if w.dtype.kind == "f" else np.float64, copy=self._copy)
        if w.ndim != 2:
            self._fail(place, "a 2-D array", f"shape {w.shape}")
        if not np.isfinite(w.data).all():
            self._fail(place, "finite values", f"{int((~np.isfinite(w.data)).sum())} NaN/Inf value(s)")
        if m.flat is None:
            return w
        if w.shape[0] * w.shape[1] > 16 * w.nnz + 4096:
            self._fail(place, "a dense weight where a dense layer reads a flattened 4-D tensor",
                       f"a sparse {w.shape[0]}x{w.shape[1]} weight storing {w.nnz} entries")
        return w.toarray()

    def _new_group(self, name, op_type, kind, n, inputs, shape, stage, **kw) -> int:
        self._claim(f"input {name!r}" if op_type == "input" else f"node {name!r}", int(n))
        if not name or any(g["name"] == name for g in self._groups):
            self._fail(f"node {name!r}", "a unique, non-empty group name", "a duplicate" if name else "none")
        if op_type == "input" and self._groups:
            self._fail(f"input {name!r}", "one graph input", "a second one")
        depth = 1 + max((self._groups[g]["depth"] for s in inputs for g in set(self._maps[s].group.tolist())
                         if g >= 0), default=-1)
        self._groups.append(dict(name=name, op_type=op_type, kind=kind, n_units=n, depth=depth, stage=stage,
                                 inputs=tuple(inputs), shape=tuple(shape), **kw))
        return len(self._groups) - 1

    def _bias(self, bias, n, place):
        if bias is None:
            return None
        b = self._array(bias, place + " bias", 1)
        if b.shape != (n,):
            self._fail(place + " bias", f"shape ({n},)", f"shape {b.shape}")
        return b

    def _unit_output(self, g: int, spatial) -> TensorMap:
        n = self._groups[g]["n_units"]
        return TensorMap(np.full(n, g, np.int64), np.arange(n, dtype=np.int64), np.ones(n), spatial)

    def n_features(self, t: Tensor) -> int:
        """Columns of a 2-D tensor (channels x spatial size when it is a flattened 4-D one)."""
        return self._map(t, "n_features").n_features

    # -- groups ----------------------------------------------------------------------------------
    def input(self, name: str, *, channels: int, spatial=None) -> Tensor:
        """The graph input: ``channels`` units; ``spatial`` (H, W) for an image input."""
        spatial = None if spatial is None else _pair(spatial)
        g = self._new_group(name, "input", "input", int(channels), (), (int(channels),) + (spatial or ()), 0)
        return self._push("input", (), {}, self._unit_output(g, spatial), 0, g)

    def dense(self, name: str, x: Tensor, weight, bias=None) -> Tensor:
        """A dense layer, ``weight`` (out, in_features); reads a 2-D (possibly flattened) tensor."""
        m, place = self._map(x, f"dense {name!r}"), f"dense {name!r}"
        if m.spatial is not None:
            self._fail(place, "a 2-D input (flatten a 4-D tensor first)", f"a 4-D tensor {m.spatial}")
        w = self._sparse_weight(weight, m, place + " weight") if sp.issparse(weight) else \
            self._array(weight, place + " weight", 2)
        if w.shape[1] != m.n_features:
            self._fail(place + " weight", f"{m.n_features} input features", f"{w.shape[1]} (shape {w.shape})")
        st = self._stage[x.slot]
        g = self._new_group(name, "dense", "dense", w.shape[0], (x.slot,), (w.shape[0],), st, weight=w,
                            bias=self._bias(bias, w.shape[0], place))
        return self._push("dense", (x.slot,), {}, self._unit_output(g, None), st, g)

    def _conv_common(self, name, x, weight, op, strides, pads, dilations, group):
        place = f"{op} {name!r}"
        m = self._map(x, place)
        if m.spatial is None:
            self._fail(place, "a 4-D (n, C, H, W) input", "a 2-D tensor")
        w = self._array(weight, place + " weight", 4)
        group = int(group)
        if group < 1 or m.n_channels % group or w.shape[0] % group:
            self._fail(place, f"group dividing the input channels ({m.n_channels}) and the weight's "
                              f"first axis ({w.shape[0]})", f"group={group}")
        strides, dilations = _pair(strides), _pair(dilations)
        pads = tuple(int(p) for p in pads)
        if len(pads) != 4 or min(pads) < 0 or min(strides + dilations) < 1:
            self._fail(place, "pads (h0, w0, h1, w1) >= 0, strides and dilations >= 1",
                       f"pads={pads}, strides={strides}, dilations={dilations}")
        return place, m, w, group, strides, pads, dilations

    def conv(self, name: str, x: Tensor, weight, bias=None, *, strides=(1, 1), pads=(0, 0, 0, 0),
             dilations=(1, 1), group: int = 1) -> Tensor:
        """A 2-D convolution, ``weight`` (O, C/group, kh, kw), ``pads`` (h_begin, w_begin, h_end, w_end)."""
        place, m, w, group, strides, pads, dilations = self._conv_common(name, x, weight, "conv", strides, pads,
                                                                         dilations, group)
        if w.shape[1] * group != m.n_channels:
            self._fail(place + " weight", f"{m.n_channels // group} input channels per group "
                       f"({m.n_channels} / group {group})", f"{w.shape[1]} (shape {w.shape})")
        size = tuple(conv_out_size(m.spatial[a], w.shape[2 + a], strides[a], pads[a], pads[2 + a], dilations[a])
                     for a in range(2))
        if min(size) < 1:
            self._fail(place, "a positive output size", f"{size} from input {m.spatial}")
        st = self._stage[x.slot] + (max(strides) > 1)
        params = dict(strides=strides, pads=pads, dilations=dilations, group=group)
        g = self._new_group(name, "conv", "conv", w.shape[0], (x.slot,), (w.shape[0],) + size, st, weight=w,
                            bias=self._bias(bias, w.shape[0], place), params=params)
        return self._push("conv", (x.slot,), params, self._unit_output(g, size), st, g)

    def conv_transpose(self, name: str, x: Tensor, weight, bias=None, *, strides=(1, 1), pads=(0, 0, 0, 0),
                       dilations=(1, 1), group: int = 1, output_padding=(0, 0)) -> Tensor:
        """A 2-D transposed convolution, ``weight`` (C, O/group, kh, kw)."""
        place, m, w, group, strides, pads, dilations = self._conv_common(name, x, weight, "conv_transpose",
                                                                         strides, pads, dilations, group)
        if w.shape[0] != m.n_channels:
            self._fail(place + " weight", f"{m.n_channels} input channels", f"{w.shape[0]} (shape {w.shape})")
        op = _pair(output_padding)
        size = tuple(conv_transpose_out_size(m.spatial[a], w.shape[2 + a], strides[a], pads[a], pads[2 + a],
                                             dilations[a], op[a]) for a in range(2))
        if min(size) < 1:
            self._fail(place, "a positive output size", f"{size} from input {m.spatial}")
        st = self._stage[x.slot] - (max(strides) > 1)
        n = w.shape[1] * group
        params = dict(strides=strides, pads=pads, dilations=dilations, group=group, output_padding=op)
        g = self._new_group(name, "conv_transpose", "conv", n, (x.slot,), (n,) + size, st, weight=w,
                            bias=self._bias(bias, n, place), params=params)
        return self._push("conv_transpose", (x.slot,), params, self._unit_output(g, size), st, g)

    def _merge(self, name, xs, op):
        place = f"{op} {name!r}"
        ms = [self._map(t, place) for t in xs]
        if len(ms) < 2:
            self._fail(place, "at least 2 data inputs", f"{len(ms)}")
        for k, m in enumerate(ms[1:], 1):
            if (m.n_channels, m.spatial, m.flat) != (ms[0].n_channels, ms[0].spatial, ms[0].flat):
                self._fail(place, f"inputs of equal shape ({ms[0].n_channels} channels, spatial {ms[0].spatial})",
                           f"input {k} with {m.n_channels} channels, spatial {m.spatial}")
        if ms[0].flat is not None:
            self._fail(place, "inputs that are not flattened", "a flattened tensor")
        st = max(self._stage[t.slot] for t in xs)
        slots = tuple(t.slot for t in xs)
        shape = (ms[0].n_channels,) + (ms[0].spatial or ())
        g = self._new_group(name, op, "merge", ms[0].n_channels, slots, shape, st)
        return self._push(op, slots, {}, self._unit_output(g, ms[0].spatial), st, g)

    def add(self, name: str, inputs) -> Tensor:
        """Elementwise sum of >= 2 data tensors (Add/Sum): a merge group, identity edges c -> c."""
        return self._merge(name, list(inputs), "add")

    def mul(self, name: str, a: Tensor, b: Tensor) -> Tensor:
        """Elementwise product of two data tensors (a gate): a merge group, gate edges c -> c."""
        return self._merge(name, [a, b], "mul")

    # -- pass-through ------------------------------------------------------------------------------
    def _same(self, op, x, params, place, m=None) -> Tensor:
        m = self._map(x, place) if m is None else m
        return self._push(op, (x.slot,), params, m, self._stage[x.slot])

    def identity(self, x: Tensor) -> Tensor:
        """Dropout, Identity, Cast: nothing to record."""
        self._map(x, "identity")
        return x

    def activation(self, x: Tensor, name: str, *, alpha: float = 0.01, assumed: bool = False) -> Tensor:
        """An activation from :data:`modgraph.network.ACTIVATIONS`; recorded on groups that have none yet."""
        m = self._map(x, f"activation {name!r}")
        if name not in ACTIVATIONS:
            self._fail(f"activation {name!r}", "one of " + ", ".join(sorted(ACTIVATIONS)), repr(name))
        if name in ("softmax", "log_softmax") and (m.spatial is not None or m.flat is not None):
            self._fail(f"activation {name!r}", "a 2-D, unflattened input", "a spatial tensor")
        for g in sorted(set(m.group.tolist()) - {-1}):
            if "activation" not in self._groups[g]:
                self._groups[g].update(activation=name, alpha=float(alpha), activation_assumed=bool(assumed))
        return self._same("activation", x, {"name": name, "alpha": float(alpha), "assumed": bool(assumed)},
                          "activation")

    def affine(self, x: Tensor, scale, shift=None, *, name: str | None = None) -> Tensor:
        """Per-channel ``x * scale + shift`` (BatchNormalization in inference form); |scale| is a gain."""
        place = f"affine {name!r}"
        m = self._map(x, place)
        if m.flat is not None:
            self._fail(place, "a per-channel affine on an unflattened tensor", "a flattened tensor")
        s = self._array(scale, place + " scale", 1)
        b = np.zeros_like(s) if shift is None else self._array(shift, place + " shift", 1)
        if s.shape != (m.n_channels,) or b.shape != (m.n_channels,):
            self._fail(place, f"scale and shift of shape ({m.n_channels},)", f"{s.shape} and {b.shape}")
        out = TensorMap(m.group, m.unit, m.scale * np.abs(s), m.spatial)
        return self._same("affine", x, {"scale": s, "shift": b}, place, out)

    def batch_norm(self, x: Tensor, gamma, beta, mean, var, *, eps: float = 1e-5, name: str | None = None):
        """BatchNormalization (inference): s = gamma / sqrt(var + eps), shift = beta - mean * s."""
        s = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
        return self.affine(x, s, np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * s, name=name)

    def _spatial(self, x, place):
        m = self._map(x, place)
        if m.spatial is None:
            self._fail(place, "a 4-D (n, C, H, W) input", "a 2-D tensor")
        return m

    def _pool(self, op, x, kernel, strides, pads, dilations, extra):
        place = op
        m = self._spatial(x, place)
        kernel = _pair(kernel)
        strides = kernel if strides is None else _pair(strides)
        pads, dilations = tuple(int(p) for p in pads), _pair(dilations)
        size = tuple(pool_out_size(m.spatial[a], kernel[a], strides[a], pads[a], pads[2 + a], dilations[a],
                                   extra["ceil_mode"]) for a in range(2))
        if len(pads) != 4 or min(size) < 1:
            self._fail(place, "pads (h0, w0, h1, w1) and a positive output size", f"pads={pads}, size {size}")
        out = TensorMap(m.group, m.unit, m.scale, size)
        params = dict(kernel=kernel, strides=strides, pads=pads, dilations=dilations, **extra)
        t = self._push(op, (x.slot,), params, out, self._stage[x.slot] + (max(strides) > 1))
        return t

    def max_pool(self, x: Tensor, kernel, *, strides=None, pads=(0, 0, 0, 0), dilations=(1, 1),
                 ceil_mode: bool = False) -> Tensor:
        """Max pooling (``strides`` default = ``kernel``; floor mode unless ``ceil_mode``)."""
        return self._pool("max_pool", x, kernel, strides, pads, dilations, {"ceil_mode": bool(ceil_mode)})

    def avg_pool(self, x: Tensor, kernel, *, strides=None, pads=(0, 0, 0, 0),
                 count_include_pad: bool = False, ceil_mode: bool = False) -> Tensor:
        """Average pooling; padding excluded from the divisor unless ``count_include_pad`` (ONNX default)."""
        return self._pool("avg_pool", x, kernel, strides, pads, (1, 1),
                          {"count_include_pad": bool(count_include_pad), "ceil_mode": bool(ceil_mode)})

    def global_avg_pool(self, x: Tensor) -> Tensor:
        """Mean over H, W (keeps a 1 x 1 spatial tensor, as ONNX does)."""
        m = self._spatial(x, "global_avg_pool")
        return self._same("global_avg_pool", x, {}, "", TensorMap(m.group, m.unit, m.scale, (1, 1)))

    def global_max_pool(self, x: Tensor) -> Tensor:
        """Max over H, W (keeps a 1 x 1 spatial tensor)."""
        m = self._spatial(x, "global_max_pool")
        return self._same("global_max_pool", x, {}, "", TensorMap(m.group, m.unit, m.scale, (1, 1)))

    def pad(self, x: Tensor, pads, *, value: float = 0.0, mode: str = "constant") -> Tensor:
        """Spatial padding (h_begin, w_begin, h_end, w_end); ``mode`` constant, reflect or edge."""
        m = self._spatial(x, "pad")
        pads = tuple(int(p) for p in pads)
        if len(pads) != 4 or min(pads) < 0 or mode not in ("constant", "reflect", "edge"):
            self._fail("pad", "4 pads >= 0 and mode constant|reflect|edge", f"pads={pads}, mode={mode!r}")
        size = (m.spatial[0] + pads[0] + pads[2], m.spatial[1] + pads[1] + pads[3])
        return self._same("pad", x, {"pads": pads, "value": float(value), "mode": mode}, "pad",
                          TensorMap(m.group, m.unit, m.scale, size))

    # -- re-index ------------------------------------------------------------------------------------
    def concat(self, inputs) -> Tensor:
        """Channel concatenation: the unit lists are concatenated."""
        xs = list(inputs)
        ms = [self._map(t, "concat") for t in xs]
        if not ms or any(m.spatial != ms[0].spatial or m.flat is not None for m in ms):
            self._fail("concat", "unflattened inputs of one spatial size",
                       ", ".join(str(m.spatial) for m in ms) or "no inputs")
        self._claim("concat", sum(len(m.group) for m in ms))
        out = TensorMap(*(np.concatenate([getattr(m, a) for m in ms]) for a in ("group", "unit", "scale")),
                        ms[0].spatial)
        return self._push("concat", [t.slot for t in xs], {}, out, max(self._stage[t.slot] for t in xs))

    def slice(self, x: Tensor, start: int, stop: int) -> Tensor:
        """Channels ``start:stop`` (Split/Slice on the channel axis)."""
        m = self._map(x, "slice")
        if not 0 <= start < stop <= m.n_channels or m.flat is not None:
            self._fail("slice", f"0 <= start < stop <= {m.n_channels} on an unflattened tensor",
                       f"{start}:{stop}")
        out = TensorMap(m.group[start:stop], m.unit[start:stop], m.scale[start:stop], m.spatial)
        return self._same("slice", x, {"start": int(start), "stop": int(stop)}, "slice", out)

    def split(self, x: Tensor, sizes) -> list[Tensor]:
        """Consecutive channel slices of the given sizes (they must add up to the channels)."""
        if sum(sizes) != x.n_channels:
            self._fail("split", f"sizes adding up to {x.n_channels}", f"{list(sizes)}")
        bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        return [self.slice(x, a, b) for a, b in zip(bounds[:-1], bounds[1:])]

    def pad_channels(self, x: Tensor, before: int, after: int) -> Tensor:
        """Zero channels before/after (a channel Pad): they carry no unit."""
        m = self._map(x, "pad_channels")
        if min(before, after) < 0 or m.flat is not None:
            self._fail("pad_channels", "counts >= 0 on an unflattened tensor", f"{before}, {after}")
        self._claim("pad_channels", len(m.group) + int(before) + int(after))
        z = np.full(before, -1, np.int64), np.full(after, -1, np.int64)
        out = TensorMap(np.concatenate([z[0], m.group, z[1]]), np.concatenate([z[0], m.unit, z[1]]),
                        np.concatenate([np.ones(before), m.scale, np.ones(after)]), m.spatial)
        return self._same("pad_channels", x, {"channels": (int(before), int(after))}, "", out)

    def flatten(self, x: Tensor, order: str = "CHW") -> Tensor:
        """4-D -> 2-D; ``order`` CHW (PyTorch, ONNX NCHW) or HWC (Keras/tf channels_last)."""
        m = self._spatial(x, "flatten")
        if order not in ("CHW", "HWC"):
            self._fail("flatten", "order CHW or HWC", repr(order))
        out = TensorMap(m.group, m.unit, m.scale, None, (m.spatial[0], m.spatial[1], order))
        return self._same("flatten", x, {"order": order}, "", out)

    # -- the value -------------------------------------------------------------------------------------
    def build(self, outputs, *, metadata=None, source_format: str | None = None) -> DagNetwork:
        """The immutable network whose outputs are the tensors ``outputs``."""
        outs = [self._map(t, "build outputs") is not None and t.slot for t in outputs]
        if not self._groups or not outs:
            self._fail("network", "an input and at least one output", "none")
        gains = self._fold_gains(outs)
        groups = []
        for g, d in enumerate(self._groups):
            d = dict(d)
            for key in ("weight", "bias"):
                a = d.get(key)
                for arr in ((a.data, a.indices, a.indptr) if sp.issparse(a) else (a,) if a is not None else ()):
                    arr.flags.writeable = False
            if d["kind"] != "input" and any(g in self._maps[s].group for s in outs):
                d["kind"] = "output"
            d["gain"] = gains[g]
            d["gain"].flags.writeable = False
            groups.append(UnitGroup(**d))
        for m in self._maps:
            for a in (m.group, m.unit, m.scale):
                a.flags.writeable = False
        for s in self._steps:
            for v in s.params.values():
                if isinstance(v, np.ndarray):
                    v.flags.writeable = False
        return DagNetwork(groups, self._steps, self._maps, outs, metadata=metadata, source=self.source,
                          source_format=source_format)

    def _fold_gains(self, outs) -> list[np.ndarray]:
        """|s| per unit: the path scale of a unit when every consumer sees the same one, else 1."""
        sizes = [d["n_units"] for d in self._groups]
        off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        units, scales = [], []
        for s in [s for d in self._groups for s in d["inputs"]] + list(outs):
            m = self._maps[s]
            keep = m.group >= 0
            units.append(off[m.group[keep]] + m.unit[keep])
            scales.append(m.scale[keep])
        u, sc = np.concatenate(units), np.concatenate(scales)
        lo, hi = np.full(off[-1], np.inf), np.full(off[-1], -np.inf)
        np.minimum.at(lo, u, sc)
        np.maximum.at(hi, u, sc)
        gain = np.where(lo == hi, lo, 1.0)
        return [gain[off[g]:off[g + 1]].copy() for g in range(len(sizes))]
