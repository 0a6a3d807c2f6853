"""The network as a DAG of unit groups; a chain of dense layers is its cheap exact special case.

A **unit group** is made by every weighted op (dense, conv, conv-transpose: one unit per output
channel or neuron), by every data merge (``add``: Add/Sum, identity edges c -> c; ``mul``: the
product of two data tensors, gate edges) and by the graph input. Units are named
``"{group}:{k}"``, ``k`` the channel or neuron index in the file. Ops that create no units
(activations, pools, spatial pads, per-channel affine = BatchNormalization, channel
concat/slice/pad, flatten) are kept as *steps*, so :meth:`DagNetwork.forward` reproduces the
network. Build one with :class:`modgraph.dag_builder.DagBuilder`, or wrap a
:class:`~modgraph.network.LayeredNetwork` with :meth:`DagNetwork.from_layered` (which keeps the
chain itself: its ``forward`` and ``to_layered`` are exactly the chain's). The typed unit edges
come from :func:`modgraph.dag_edges.unit_edges`. docs/dag.md describes the whole value.

Examples
--------
>>> import numpy as np
>>> from modgraph.network import Layer, LayeredNetwork
>>> chain = LayeredNetwork([Layer.from_dense(np.array([[1.0, -1.0]]), activation="identity")])
>>> dag = DagNetwork.from_layered(chain)
>>> dag.is_chain, dag.unit_names()
(True, ['input:0', 'input:1', 'layer1:0'])
>>> dag.to_layered() is chain
True
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from modgraph.dag_edges import EDGE_TYPES, edge_blocks, unit_edges
from modgraph.dag_ops import conv2d, conv_transpose2d, pad2d, pool2d
from modgraph.errors import FormatError
from modgraph.network import ACTIVATIONS, Layer, LayeredNetwork

__all__ = ["DagNetwork", "UnitGroup", "TensorMap", "Step", "GROUP_KINDS"]

#: The kinds of unit group.
GROUP_KINDS = ("input", "conv", "dense", "merge", "output")


@dataclass(frozen=True, eq=False)
class UnitGroup:
    """One group of units and the op that makes them.

    ``op_type`` is ``input``, ``dense``, ``conv``, ``conv_transpose``, ``add`` or ``mul``;
    ``kind`` is one of :data:`GROUP_KINDS` (the groups read as network outputs are ``output``).
    ``weight`` is (J, F) for dense (a CSR matrix when the group came from a LayeredNetwork),
    (O, I/g, kh, kw) for conv, (I, O/g, kh, kw) for conv_transpose, None otherwise. ``inputs``
    are the tensor slots the op reads. ``gain`` is |s| per unit: the per-channel affine gain
    folded into the unit (1 where none). ``shape`` is the output (C,) or (C, H, W).
    ``activation``/``alpha`` is the first activation applied to the group's units (``identity``
    when none); ``activation_assumed`` says a reader guessed it.
    """

    name: str
    op_type: str
    kind: str
    n_units: int
    depth: int
    stage: int
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    weight: object = None
    bias: np.ndarray | None = None
    params: Mapping = field(default_factory=dict)
    activation: str = "identity"
    alpha: float = 0.01
    activation_assumed: bool = False
    gain: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class TensorMap:
    """Which unit each channel of a tensor carries.

    ``group``/``unit`` per channel (group −1 = a zero channel with no unit); ``scale`` the product
    of |s| of the affine ops the channel went through since its unit; ``spatial`` (H, W) or None
    for a 2-D tensor; ``flat`` (H, W, order) when a 2-D tensor is a flattened 4-D one (order
    ``CHW``: feature = c*H*W + s; ``HWC``: feature = s*C + c).
    """

    group: np.ndarray
    unit: np.ndarray
    scale: np.ndarray
    spatial: tuple[int, int] | None = None
    flat: tuple[int, int, str] | None = None

    @property
    def n_channels(self) -> int:
        return int(self.group.size)

    @property
    def n_features(self) -> int:
        """Columns of the 2-D tensor (channels x spatial size when flattened)."""
        return self.n_channels * (self.flat[0] * self.flat[1] if self.flat else 1)


@dataclass(frozen=True, eq=False)
class Step:
    """One op of the forward pass: reads tensor slots ``inputs``, writes its own slot."""

    op: str
    inputs: tuple[int, ...]
    params: Mapping
    group: int = -1


class DagNetwork:
    """A DAG of unit groups, its forward steps and which units each tensor carries.

    Made by :class:`~modgraph.dag_builder.DagBuilder` (``build``) or :meth:`from_layered`;
    immutable (arrays read-only). Step ``i`` writes tensor slot ``i``; steps are in a
    topological order, so the DAG is acyclic by construction.
    """

    def __init__(self, groups: Sequence[UnitGroup], steps: Sequence[Step], tensor_maps: Sequence[TensorMap],
                 outputs: Sequence[int], *, metadata=None, source: str | None = None,
                 source_format: str | None = None, layered: LayeredNetwork | None = None):
        self.groups = tuple(groups)
        self.steps = tuple(steps)
        self.tensor_maps = tuple(tensor_maps)
        self.outputs = tuple(int(o) for o in outputs)
        self.source, self.source_format = source, source_format
        self._layered = layered
        self._metadata_json = json.dumps({} if metadata is None else dict(metadata), sort_keys=True)
        self.unit_offsets = np.concatenate([[0], np.cumsum([g.n_units for g in self.groups])]).astype(np.int64)
        self.unit_offsets.flags.writeable = False
        self._index = {g.name: i for i, g in enumerate(self.groups)}
        self._group_step = {s.group: i for i, s in enumerate(self.steps) if s.group >= 0}

    # -- the chain special case ---------------------------------------------------------------
    @classmethod
    def from_layered(cls, net: LayeredNetwork) -> "DagNetwork":
        """The chain as a DAG: groups ``input``, ``layer1`` … ``layerL`` (= UnitGraph layer numbers)."""
        ones = np.ones(net.n_inputs)
        groups = [UnitGroup("input", "input", "input", net.n_inputs, 0, 0, (), (net.n_inputs,), gain=ones)]
        steps = [Step("input", (), {}, 0)]
        maps = [_identity_map(0, net.n_inputs)]
        for i, layer in enumerate(net.layers):
            g = len(groups)
            kind = "output" if i == len(net.layers) - 1 else "dense"
            groups.append(UnitGroup(f"layer{i + 1}", "dense", kind, layer.n_out, i + 1, 0, (len(steps) - 1,),
                                    (layer.n_out,), layer.weight, layer.bias, activation=layer.activation,
                                    alpha=layer.alpha, gain=np.ones(layer.n_out)))
            steps.append(Step("dense", (len(steps) - 1,), {}, g))
            maps.append(_identity_map(g, layer.n_out))
            steps.append(Step("activation", (len(steps) - 1,), {"name": layer.activation, "alpha": layer.alpha}))
            maps.append(maps[-1])
        return cls(groups, steps, maps, [len(steps) - 1], metadata=net.metadata, source=net.source,
                   source_format=net.source_format, layered=net)

    @property
    def is_chain(self) -> bool:
        """True iff the network is one input and a chain of dense layers (activations only between)."""
        return self._layered is not None or self._chain_steps() is not None

    def _chain_steps(self):
        st = self.steps
        if len(st) < 2 or st[0].op != "input" or self.outputs != (len(st) - 1,):
            return None
        pairs, i, prev = [], 1, 0
        while i < len(st):
            if st[i].op != "dense" or st[i].inputs != (prev,) or self.tensor_maps[prev].flat is not None:
                return None
            act, nxt = {"name": "identity", "alpha": 0.01}, i + 1
            if nxt < len(st) and st[nxt].op == "activation" and st[nxt].inputs == (i,):
                act, nxt = st[nxt].params, nxt + 1
            pairs.append((self.groups[st[i].group], act))
            prev, i = nxt - 1, nxt
        return pairs

    def to_layered(self) -> LayeredNetwork:
        """The :class:`LayeredNetwork` of a pure dense chain (the very one given to ``from_layered``)."""
        if self._layered is not None:
            return self._layered
        pairs = self._chain_steps()
        if pairs is None:
            ops = sorted({s.op for s in self.steps} - {"input", "dense", "activation"})
            raise FormatError(self.source or "<network>", "network", "a chain of dense layers",
                              "a DAG" + (f" with {', '.join(ops)}" if ops else " with branches"))
        layers = [Layer(g.weight, g.bias, activation=a["name"], alpha=a["alpha"]) if sp.issparse(g.weight)
                  else Layer.from_dense(g.weight, g.bias, activation=a["name"], alpha=a["alpha"])
                  for g, a in pairs]
        return LayeredNetwork(layers, metadata=self.metadata, source=self.source, source_format=self.source_format)

    # -- units --------------------------------------------------------------------------------
    @property
    def metadata(self) -> dict:
        return json.loads(self._metadata_json)

    @property
    def n_units(self) -> int:
        return int(self.unit_offsets[-1])

    def group(self, name: str) -> UnitGroup:
        """The group called ``name``."""
        try:
            return self.groups[self._index[name]]
        except KeyError:
            raise KeyError(f"no unit group {name!r}; groups: {', '.join(self._index)}") from None

    def unit_names(self) -> list[str]:
        """``"{group}:{k}"`` for every unit, in global unit order."""
        return [f"{g.name}:{k}" for g in self.groups for k in range(g.n_units)]

    def edges(self, *, edge_norm: str = "l1"):
        """Typed unit edges: :func:`modgraph.dag_edges.unit_edges`."""
        return unit_edges(self, edge_norm=edge_norm)

    def summary(self, *, edge_norm: str = "l1") -> dict:
        """Groups, units and edges by type, as a JSON-ready dict."""
        e = edge_blocks(self, edge_norm=edge_norm)               # counted per block, never listed
        n_in = e.counts_into_groups()
        rows = [{"name": g.name, "op_type": g.op_type, "kind": g.kind, "n_units": g.n_units, "depth": g.depth,
                 "stage": g.stage, "shape": list(g.shape), "activation": g.activation,
                 "activation_assumed": g.activation_assumed, "n_edges_in": int(n_in[i])}
                for i, g in enumerate(self.groups)]
        counts = e.counts_by_type()
        return {"n_groups": len(self.groups), "n_units": self.n_units, "n_edges": e.n_edges,
                "edges_by_type": {t: int(c) for t, c in zip(EDGE_TYPES, counts)}, "is_chain": self.is_chain,
                "source_format": self.source_format, "edge_norm": edge_norm, "groups": rows}

    def __repr__(self) -> str:
        return f"DagNetwork(groups={len(self.groups)}, units={self.n_units}, chain={self.is_chain})"

    # -- computation --------------------------------------------------------------------------
    def forward(self, x, *, silence=None):
        """Compute the network: ``x`` is (n, C, H, W) for a spatial input, (n, features) otherwise.

        ``silence`` maps a group (its name or index) to channel indices: those units are silenced,
        as if their incoming weights and bias were zeroed — the group's output channels are 0 where
        the op that makes them writes them (later activations and affine steps still apply, as to
        any unit whose weights are gone). Returns one array, or a tuple when the network has
        several outputs. A DAG made by :meth:`from_layered` runs :meth:`LayeredNetwork.forward`
        itself (bit-identical) unless units are silenced.
        """
        zero = self._silenced_steps(silence)
        if self._layered is not None and not zero:
            return self._layered.forward(x)
        vals = self._run(self._check_input(x), zero)
        out = tuple(vals[o] for o in self.outputs)
        return out[0] if len(out) == 1 else out

    def group_step(self, g: int) -> int:
        """The step (= tensor slot) whose op makes group ``g``."""
        return self._group_step[g]

    def _silenced_steps(self, silence) -> dict:
        """``silence`` ({group name or index: channels}) as {step: channel index array}, checked."""
        zero = {}
        for key, units in (silence or {}).items():
            if isinstance(key, str):
                g = self._index.get(key)
                if g is None:
                    raise KeyError(f"silence: no unit group {key!r}; groups: {', '.join(self._index)}")
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < len(self.groups):
                g = int(key)
            else:
                raise KeyError(f"silence: expected a group name or an index 0..{len(self.groups) - 1}, got {key!r}")
            u = np.unique(np.asarray(units, dtype=np.int64).ravel())
            n = self.groups[g].n_units
            if u.size and (u[0] < 0 or u[-1] >= n):
                raise ValueError(f"silence: group {self.groups[g].name!r} has channels 0..{n - 1}, got {u.tolist()}")
            if u.size:
                step = self._group_step[g]
                zero[step] = np.union1d(zero.get(step, u), u)
        return zero

    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        m0 = self.tensor_maps[0]
        want = (m0.n_channels,) + (m0.spatial or ())
        if x.ndim != 1 + len(want) or x.shape[1:] != want:
            raise ValueError(f"forward: expected input of shape (n, {', '.join(map(str, want))}), got {x.shape}")
        return x

    def _run(self, x, zero: dict, *, start: int = 0, known: dict | None = None, keep: bool = False) -> dict:
        """Run steps ``start..`` (``known``: the values of the earlier slots they read); zero the
        channels ``zero[step]`` of those steps' outputs. Returns the slot values: every slot when
        ``keep``, else the outputs (intermediate tensors are freed after their last use)."""
        last_use = {}
        for i, s in enumerate(self.steps):
            for j in s.inputs:
                last_use[j] = i
        vals: dict[int, np.ndarray] = dict(known or {})
        for i in range(start, len(self.steps)):
            s = self.steps[i]
            v = x if s.op == "input" else _RUN[s.op](self, s, [vals[j] for j in s.inputs])
            if i in zero:
                v = np.array(v, copy=True)
                v[:, zero[i]] = 0.0
            vals[i] = v
            if keep:
                continue
            for j in set(s.inputs):                   # an input read twice (x + x) is freed once
                if last_use[j] == i and j not in self.outputs and j in vals:
                    del vals[j]
        return vals


def _identity_map(g: int, n: int, spatial=None) -> TensorMap:
    return TensorMap(np.full(n, g, np.int64), np.arange(n, dtype=np.int64), np.ones(n), spatial)


def _bcast(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A per-channel vector shaped to broadcast against ``x`` (n, C) or (n, C, H, W)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _dense(net, s, xs):
    g = net.groups[s.group]
    w, (x,) = g.weight, xs
    z = (w @ x.T).T if not isinstance(w, np.ndarray) else x @ w.T
    return z if g.bias is None else z + g.bias


def _conv(net, s, xs):
    g = net.groups[s.group]
    return conv2d(xs[0], g.weight, g.bias, **g.params)


def _conv_t(net, s, xs):
    g = net.groups[s.group]
    return conv_transpose2d(xs[0], g.weight, g.bias, **g.params)


def _concat(net, s, xs):
    return np.concatenate(xs, axis=1)


def _flatten(net, s, xs):
    x = xs[0]
    return (x if s.params["order"] == "CHW" else x.transpose(0, 2, 3, 1)).reshape(x.shape[0], -1)


def _pad_channels(net, s, xs):
    x, (before, after) = xs[0], s.params["channels"]
    return np.pad(x, ((0, 0), (before, after)) + ((0, 0),) * (x.ndim - 2))


_RUN = {
    "dense": _dense, "conv": _conv, "conv_transpose": _conv_t,
    "add": lambda net, s, xs: sum(xs[1:], xs[0]),
    "mul": lambda net, s, xs: xs[0] * xs[1],
    "activation": lambda net, s, xs: ACTIVATIONS[s.params["name"]](xs[0], s.params["alpha"]),
    "affine": lambda net, s, xs: xs[0] * _bcast(s.params["scale"], xs[0]) + _bcast(s.params["shift"], xs[0]),
    "max_pool": lambda net, s, xs: pool2d(xs[0], mode="max", **s.params),
    "avg_pool": lambda net, s, xs: pool2d(xs[0], mode="avg", **s.params),
    "global_avg_pool": lambda net, s, xs: xs[0].mean(axis=(2, 3), keepdims=True),
    "global_max_pool": lambda net, s, xs: xs[0].max(axis=(2, 3), keepdims=True),
    "pad": lambda net, s, xs: pad2d(xs[0], **s.params),
    "concat": _concat,
    "slice": lambda net, s, xs: xs[0][:, s.params["start"]: s.params["stop"]],
    "pad_channels": _pad_channels,
    "flatten": _flatten,
}
