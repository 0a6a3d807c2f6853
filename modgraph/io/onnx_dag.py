"""ONNX reader for networks beyond a dense chain: a :class:`~modgraph.dag.DagNetwork` built
through :class:`~modgraph.dag_builder.DagBuilder` (design ``dag-networks.md`` §1, §3).

:func:`modgraph.io.read_onnx` calls :func:`read_onnx_dag` for graphs the chain reader refuses
(a Conv, pool, Transpose, Pad, Split, ... or a branch); a dense chain keeps being read as a
:class:`~modgraph.network.LayeredNetwork` exactly as before. The walk:

1. **data or metadata**: a tensor is data iff it depends on the graph input through ops other
   than ``Shape``/``Size``; every other tensor is a constant, folded with numpy on demand
   (``_onnx_fold``), so shape arithmetic never becomes data ops or merge groups.
2. **heads** (``ArgMax``, ``ArgMin``, ``TopK``, ``ZipMap``, ``ArrayFeatureExtractor`` and what only
   they feed) are set aside: the DAG's outputs are their inputs (listed in the metadata).
3. **patterns**: GELU in Erf form (``Div(√2) → Erf → Add(1) → Mul(x) → Mul(0.5)``) and SiLU
   (``x · Sigmoid(x)``) become one activation.
4. **refusals**: every data op without a handler (LSTM, GRU, Attention, Einsum, Loop, If, a
   Gather with data indices, ...) is listed, with its node, in one
   :class:`~modgraph.errors.UnsupportedOpError`, before any weight is read.
5. **the walk** in topological order, one handler per node (``_onnx_dag_ops.DAG_HANDLERS``); the
   layout of each data tensor (NCHW, NHWC for tf2onnx graphs, or 2-D) is tracked, so
   ``Transpose(0,2,3,1) → Reshape`` is an HWC flatten.

The graph input must have static channel and spatial sizes; an NHWC input (every consumer a
``Transpose(0,3,1,2)``) becomes an NCHW input group, so ``net.forward`` takes (n, C, H, W).

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from onnx import helper, numpy_helper, save, TensorProto
>>> k = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "K")
>>> nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv", pads=[1, 1, 1, 1]),
...          helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Add", ["r", "c"], ["y"], name="res")]
>>> g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1, 4, 4])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[k])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
>>> save(helper.make_model(g), path)
>>> from modgraph.io import load
>>> net = load(path)
>>> [(g.name, g.op_type, g.n_units) for g in net.groups], net.summary()["edges_by_type"]["identity"]
([('x', 'input', 1), ('conv', 'conv', 2), ('res', 'add', 2)], 4)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from modgraph.dag_builder import DagBuilder, Tensor
from modgraph.errors import FormatError, UnsupportedOpError
from modgraph.io._onnx_dag_ops import DAG_HANDLERS, HEAD_OPS
from modgraph.io._onnx_fold import FOLD_OPS, FoldError, attrs
from modgraph.io._onnx_graph import node_place

__all__ = ["read_onnx_dag", "DAG_SUPPORTED_OPS", "Val"]

_SQRT2 = float(np.sqrt(2.0))


@dataclass(frozen=True)
class Val:
    """A data tensor: the builder's tensor and its ONNX layout (``NCHW``, ``NHWC`` or ``NC``)."""

    t: Tensor
    layout: str

    @property
    def rank(self) -> int:
        return 2 if self.layout == "NC" else 4

    @property
    def channel_axis(self) -> int:
        return 3 if self.layout == "NHWC" else 1


class DagReader:
    """The state of one walk: constants, data values, folded metadata and the builder."""

    def __init__(self, model, consts, path, order):
        self.path, self.consts = path, consts
        self.nodes = list(model.graph.node)
        self.order = [k for k in order]
        self.b = DagBuilder(source=str(path), copy=False, max_units=consts.guard.unit_budget(consts.stored_bytes()))
        self.values: dict[str, Val] = {}
        self.folded: dict[str, np.ndarray] = {}
        self.producer = {o: k for k, n in enumerate(self.nodes) for o in n.output if o}
        self.consumers: dict[str, list[int]] = {}
        for k in self.order:
            for i in dict.fromkeys(self.nodes[k].input):
                if i:
                    self.consumers.setdefault(i, []).append(k)
        self.skip: set[int] = set()             # nodes folded into a neighbour (bias Add, pattern parts)
        self.act: dict[int, tuple[str, str]] = {}  # node -> (activation, input tensor) for fused patterns
        self.batch = 1
        counts = Counter(n.name for n in self.nodes)
        self._unique = {nm for nm, c in counts.items() if nm and c == 1}
        self._graph_outputs = {o.name for o in model.graph.output}
        self.data: set[str] = set()

    def fail(self, place, expected, found):
        return FormatError(self.path, place, expected, found)

    def group_name(self, node) -> str:
        return node.name if node.name in self._unique else node.output[0]

    # -- values ----------------------------------------------------------------------------------
    def val(self, name: str, place: str) -> Val:
        if name not in self.values:
            raise self.fail(place, f"data tensor {name!r} computed before its use", "a constant or a missing tensor")
        return self.values[name]

    def shape_of(self, v: Val) -> tuple[int, ...]:
        t = v.t
        if v.layout == "NC":
            return (self.batch, self.b.n_features(t))
        h, w = t.spatial
        return (self.batch, t.n_channels, h, w) if v.layout == "NCHW" else (self.batch, h, w, t.n_channels)

    def const(self, name: str, place: str) -> np.ndarray:
        """A constant input: an initializer / Constant node, or a folded metadata tensor."""
        if not name:
            raise self.fail(place, "a constant input", "an omitted input")
        if name in self.data:
            raise self.fail(place, f"a constant for input {name!r}", "a tensor computed from the graph input")
        if name in self.consts:
            return self.consts.array(name, f"{place} input {name!r}")
        if name not in self.folded:
            self._fold(name, place)
        return self.folded[name]

    def _fold(self, name: str, place: str) -> None:
        if name not in self.producer:
            raise self.fail(place, f"a constant or computed tensor {name!r}", "a name nothing produces")
        k = self.producer[name]
        node = self.nodes[k]
        where = node_place(node, k)
        a = attrs(node)
        if name != node.output[0]:
            raise self.fail(where, "a single-output op in the metadata (shape arithmetic)",
                            f"output {list(node.output).index(name)} of {len(node.output)}")
        if node.op_type in ("Shape", "Size") and node.input[0] in self.data:
            shape = self.shape_of(self.val(node.input[0], where))
            out = (np.asarray(shape[a.get("start", 0):a.get("end")], np.int64) if node.op_type == "Shape"
                   else np.asarray(int(np.prod(shape)), np.int64))
        else:
            args = [self.const(i, where) if i else None for i in node.input]
            try:
                out = FOLD_OPS[node.op_type](args, node, a)
            except (FoldError, ValueError, IndexError, TypeError) as err:
                raise self.fail(where, "metadata (shape arithmetic) that numpy can evaluate",
                                f"{type(err).__name__}: {err}") from err
        self.folded[node.output[0]] = np.asarray(out)

    def set(self, name: str, t: Tensor, layout: str) -> None:
        self.values[name] = Val(t, layout)

    def single_use(self, name: str) -> int | None:
        """The one node reading ``name`` (None when several do, or it is a graph output)."""
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in self._graph_outputs else None

    @staticmethod
    def other(node, name: str) -> str | None:
        """The other operand of a binary node reading ``name`` once."""
        ins = list(node.input)
        return ins[1 - ins.index(name)] if len(ins) == 2 and ins.count(name) == 1 else None


def _classify(r: DagReader, input_name: str) -> None:
    """Data tensors (depend on the input through non-Shape ops) and the ignored head nodes."""
    r.data = {input_name}
    for k in r.order:
        n = r.nodes[k]
        if n.op_type not in ("Shape", "Size") and any(i in r.data for i in n.input):
            r.data.update(o for o in n.output if o)
    r.head_nodes, head_out = [], set()
    for k in r.order:
        n = r.nodes[k]
        data_in = [i for i in n.input if i in r.data]
        if data_in and (n.op_type in HEAD_OPS or all(i in head_out for i in data_in)):
            r.head_nodes.append(k)
            head_out.update(o for o in n.output if o)
    r.head_out = head_out


def _near(r, name, value) -> bool:
    if name in r.data:
        return False
    try:
        c = r.const(name, "pattern")
    except FormatError:
        return False
    return c.size == 1 and abs(float(c.reshape(-1)[0]) - value) < 1e-4 * max(1.0, abs(value))


def _patterns(r: DagReader) -> None:
    """Fuse SiLU (x * Sigmoid(x)) and Erf-form GELU into single activations."""
    for k in r.order:
        n = r.nodes[k]
        if n.op_type == "Sigmoid" and n.input[0] in r.data:
            m = r.single_use(n.output[0])
            if m is not None and r.nodes[m].op_type == "Mul" and r.other(r.nodes[m], n.output[0]) == n.input[0]:
                r.skip.add(k)
                r.act[m] = ("silu", n.input[0])
        if n.op_type == "Erf" and n.input[0] in r.producer:
            p = r.producer[n.input[0]]
            pn = r.nodes[p]
            x = pn.input[0] if pn.input and pn.input[0] in r.data else None
            if x is None or len(pn.input) != 2 or not (
                    (pn.op_type == "Div" and _near(r, pn.input[1], _SQRT2))
                    or (pn.op_type == "Mul" and _near(r, pn.input[1], 1 / _SQRT2))):
                continue
            a1 = r.single_use(n.output[0])
            if a1 is None or r.nodes[a1].op_type != "Add" or not _near(r, r.other(r.nodes[a1], n.output[0]) or "", 1.0):
                continue
            m1 = r.single_use(r.nodes[a1].output[0])
            if m1 is None or r.nodes[m1].op_type != "Mul" or r.other(r.nodes[m1], r.nodes[a1].output[0]) != x:
                continue
            m2 = r.single_use(r.nodes[m1].output[0])
            if m2 is None or r.nodes[m2].op_type != "Mul" or not _near(r, r.other(r.nodes[m2], r.nodes[m1].output[0])
                                                                        or "", 0.5):
                continue
            if r.single_use(pn.output[0]) != k:
                continue
            r.skip.update((p, k, a1, m1))
            r.act[m2] = ("gelu", x)


def _refusals(r: DagReader) -> None:
    heads = set(r.head_nodes)
    bad = []
    for k in r.order:
        n = r.nodes[k]
        if k in heads or k in r.skip or k in r.act or k in r.consts.producers:
            continue
        if any(i in r.data for i in n.input) and n.op_type not in ("Shape", "Size"):
            ok = n.op_type in DAG_HANDLERS and not (n.op_type == "Gather" and len(n.input) > 1 and n.input[1] in r.data)
        else:
            ok = n.op_type in FOLD_OPS or n.op_type == "Constant"
        if not ok:
            bad.append(node_place(n, k))
    if bad:
        ops = ", ".join(dict.fromkeys(p[p.rindex("(") + 1:-1] for p in bad))
        raise UnsupportedOpError(r.path, "ONNX graph", ops, DAG_SUPPORTED_OPS, nodes=bad)


def _input(r: DagReader, graph, input_name: str) -> None:
    vi = next(i for i in graph.input if i.name == input_name)
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in vi.type.tensor_type.shape.dim]
    place = f"graph input {input_name!r}"
    if len(dims) not in (2, 4) or any(d is None for d in dims[1:]):
        raise r.fail(place, "a 2-D (n, features) or 4-D image input with static sizes after the batch",
                     f"shape {['?' if d is None else d for d in dims]}")
    r.batch = dims[0] or 1
    if len(dims) == 2:
        r.set(input_name, r.b.input(input_name, channels=dims[1]), "NC")
        return
    users = [r.nodes[k] for k in r.consumers.get(input_name, []) if r.nodes[k].op_type not in ("Shape", "Size")]
    nhwc = bool(users) and all(u.op_type == "Transpose" and list(attrs(u).get("perm") or []) == [0, 3, 1, 2]
                               for u in users)
    c, hw = (dims[3], dims[1:3]) if nhwc else (dims[1], dims[2:])
    r.set(input_name, r.b.input(input_name, channels=c, spatial=tuple(hw)), "NHWC" if nhwc else "NCHW")


def _outputs(r: DagReader, graph) -> tuple[list, list]:
    outs, names = [], []
    for o in graph.output:
        name = o.name
        if name in r.head_out:                    # follow a head back to the data tensor it reads
            while name in r.head_out:
                node = r.nodes[r.producer[name]]
                name = next(i for i in node.input if i in r.data)
        if name not in r.values:
            raise r.fail(f"graph output {o.name!r}", "an output computed from the graph input", "a constant")
        if name not in names:
            names.append(name)
            outs.append(r.values[name].t)
    return outs, names


def read_onnx_dag(model, consts, path, order, input_name: str):
    """The :class:`~modgraph.dag.DagNetwork` of an ONNX graph (``order``: node indices, topological)."""
    r = DagReader(model, consts, path, [k for k in order if k not in consts.producers])
    _classify(r, input_name)
    _patterns(r)
    _refusals(r)
    try:
        _input(r, model.graph, input_name)
    except FormatError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:     # odd attribute types
        raise FormatError(path, f"graph input {input_name!r}", "well-formed attributes on the nodes that read it",
                          f"{type(err).__name__}: {str(err)[:120]}") from err
    heads = set(r.head_nodes)
    for k in r.order:
        n = r.nodes[k]
        if (k in heads or k in r.skip or n.op_type in ("Shape", "Size")
                or not any(i in r.data for i in n.input)):
            continue                               # metadata is folded when a data op asks for it
        place = node_place(n, k)
        try:
            if k in r.act:
                name, x = r.act[k]
                v = r.val(x, place)
                r.set(n.output[0], r.b.activation(v.t, name), v.layout)
            else:
                DAG_HANDLERS[n.op_type](r, n, place)
        except FormatError as err:
            if err.place.startswith(("node ", "graph ")) or err.path != str(path):
                raise
            raise FormatError(path, f"{place}: {err.place}", err.expected, err.found) from err
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:   # odd attribute types
            raise FormatError(path, place, "well-formed attributes and inputs for its op",
                              f"{type(err).__name__}: {str(err)[:120]}") from err
    outs, names = _outputs(r, model.graph)
    meta = {"onnx": {"producer": f"{model.producer_name} {model.producer_version}".strip(),
                     "ir_version": model.ir_version,
                     "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
                     "input": input_name, "input_layout": r.values[input_name].layout, "outputs": names,
                     "ignored_head_ops": sorted({r.nodes[k].op_type for k in heads})}}
    return r.b.build(outs, metadata=meta, source_format="onnx")


#: Every op the DAG reader understands (Erf only inside the GELU pattern, Sigmoid·x as SiLU).
DAG_SUPPORTED_OPS = tuple(sorted(set(DAG_HANDLERS) | HEAD_OPS | set(FOLD_OPS) | {"Constant"}))
