"""ONNX reader: a dense-layer chain as a LayeredNetwork, anything else as a DagNetwork.

Graphs that reach a conv, pool, layout or re-index op from their input go to the DAG reader
(:mod:`modgraph.io.onnx_dag`, a :class:`~modgraph.dag.DagNetwork`); the others are walked by the
chain reader below, and those it refuses for a branch or an unknown op are handed to the DAG
reader too (which reads them or lists every unsupported op). A chain the chain reader accepts
is read exactly as it always was; a chain written by :func:`modgraph.io.export_onnx` that only the
DAG reader reads (``gelu``, ``silu``, ``relu6`` composites) comes back as the LayeredNetwork it was.

The chain reader: a registry of small op handlers (``OP_HANDLERS``) walks forward from the graph's one real
input (ecosystem facts §1.4): ``Gemm`` (transB, alpha, beta) and ``MatMul`` (+ a constant
``Add``, either operand) start layers; activation ops tag the open layer; glue ops
(``Identity``, ``Cast``, ``Dropout``, ``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze``) pass
through; elementwise ``Add``/``Sub``/``Mul``/``Div`` with a constant and ``BatchNormalization``
are folded exactly into the neighbouring layer (into its outputs before its activation, into
the next layer's inputs after it; input preprocessing thus lands in the first layer). A
classifier head (``ArgMax``, ``ZipMap``, ``Concat``, skl2onnx's ``Sub``+``Concat``) ends the
chain; the ops it holds are listed in ``metadata["onnx"]["ignored_head_ops"]``. A cycle,
``Gemm(transA=1)`` or widths that do not chain raise :class:`~modgraph.errors.FormatError`
naming the node.
Weights from sparse initializers keep exactly their stored entries; dense weights keep their
non-zero entries. Weights are read from the file only when their layer is built (the
protobuf is parsed without them, see ``_onnx_skeleton``), and external data must lie inside
the model's folder. Files written by :func:`modgraph.io.export_onnx` get back their metadata,
input and unit names.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from onnx import helper, numpy_helper, save, TensorProto
>>> w = numpy_helper.from_array(np.array([[1.0, 0.0], [2.0, 3.0]], np.float32), "W")  # (in, out)
>>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
...     "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])], initializer=[w])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
>>> save(helper.make_model(g), path)
>>> net = read_onnx(path)
>>> net.layers[0].dense().tolist(), net.layers[0].activation, net.source_format
([[1.0, 2.0], [0.0, 3.0]], 'relu', 'onnx')
"""
from __future__ import annotations

import json
from pathlib import Path

import onnx

from modgraph.dag import DagNetwork
from modgraph.errors import FormatError, UnsupportedOpError
from modgraph.io._onnx_dag_ops import DAG_HANDLERS
from modgraph.io._chain import Chain
from modgraph.io._onnx_graph import node_place, real_input, topological_order
from modgraph.io._onnx_ops import GLUE_OPS, HEAD_OPS, OP_HANDLERS, SHAPE_OPS, glue
from modgraph.io._onnx_skeleton import read_skeleton
from modgraph.io._onnx_tensors import Constants
from modgraph.io.onnx_dag import read_onnx_dag
from modgraph.io.registry import Reader, register_reader
from modgraph.network import Layer, LayeredNetwork

__all__ = ["read_onnx", "SUPPORTED_OPS"]

#: Every op the reader understands (handlers, glue and classifier-head ops).
SUPPORTED_OPS = tuple(sorted(set(OP_HANDLERS) | GLUE_OPS | HEAD_OPS | SHAPE_OPS | {"Constant"}))


#: Data ops that only the DAG reader handles: a graph holding one is read as a DagNetwork.
_DAG_MARKERS = frozenset(DAG_HANDLERS) - set(OP_HANDLERS) - GLUE_OPS - HEAD_OPS - SHAPE_OPS


def read_onnx(path) -> LayeredNetwork | DagNetwork:
    """Read an ONNX model: a :class:`LayeredNetwork` for a chain of dense layers (exactly as the
    chain reader always did), a :class:`~modgraph.dag.DagNetwork` for anything else the DAG
    reader understands (:mod:`modgraph.io.onnx_dag`); defects raise :class:`FormatError`."""
    path = Path(path)
    skeleton = read_skeleton(path)          # weights stay in the file until a layer reads them
    try:      # external data is resolved by our own guarded reader, never by onnx.load
        model = (onnx.load(str(path), load_external_data=False) if skeleton is None
                 else onnx.load_model_from_string(skeleton[0]))
    except Exception as err:          # protobuf DecodeError, RuntimeError, ...: the file is not ONNX
        raise FormatError(path, "ONNX protobuf", "a complete, parseable ONNX model",
                          f"unparseable bytes ({type(err).__name__}: {err})") from err
    if not model.HasField("graph") or not len(model.graph.node):
        raise FormatError(path, "ONNX graph", "a graph with nodes", "no graph or no nodes")
    _check_text(model, path)
    consts = Constants(model.graph, path, None if skeleton is None else skeleton[1])
    indexed = [(i, n) for i, n in enumerate(model.graph.node) if i not in consts.producers]
    order = topological_order(indexed, path)
    input_name, sample_shape = real_input(model.graph, consts, path)
    if not _needs_dag([model.graph.node[k] for k in order], input_name):
        try:
            return _read_chain(model, consts, indexed, input_name, sample_shape, path)
        except UnsupportedOpError:
            pass                               # e.g. LSTM: the DAG reader lists every unsupported op
        except _NotAChain:
            pass                               # a branch: the DAG reader reads it
    dag = read_onnx_dag(model, consts, path, order, input_name)
    return _exported_chain(dag, model, path) or dag


def _exported_chain(dag: DagNetwork, model, path) -> LayeredNetwork | None:
    """A dense chain written by :func:`modgraph.io.export_onnx` whose activations only the DAG reader
    knows (``gelu``, ``silu``, ``relu6`` composites): the :class:`LayeredNetwork` it was, with its
    metadata, input names, unit names and alphas from ``metadata_props``; None for any other graph."""
    meta, input_names, unit_names, alphas = _modgraph_props(model, path)
    if meta is None or not dag.is_chain:
        return None
    layers = dag.to_layered().layers
    names = unit_names if unit_names is not None and len(unit_names) == len(layers) else [None] * len(layers)
    alphas = alphas if alphas is not None and len(alphas) == len(layers) else [lay.alpha for lay in layers]
    layers = [Layer(lay.weight, lay.bias, activation=lay.activation, alpha=float(a), unit_names=u)
              for lay, u, a in zip(layers, names, alphas)]
    return LayeredNetwork(layers, input_names=input_names, metadata=meta, source=str(path), source_format="onnx")


def _needs_dag(nodes, input_name: str) -> bool:
    """True when a node reached from the input (not through Shape) is one only the DAG reader knows.
    (An op neither reader knows goes to the chain reader first, so an MLP's classifier head is
    ignored exactly as before; its refusal hands over to the DAG reader, which lists them all.)"""
    data, reached = {input_name}, False
    for node in nodes:                         # in topological order
        if node.op_type not in SHAPE_OPS and any(i in data for i in node.input):
            data.update(node.output)
            reached = reached or node.op_type in _DAG_MARKERS
    return reached


class _NotAChain(FormatError):
    """The chain reader found a branch (the DAG reader takes over)."""


def _read_chain(model, consts, indexed, input_name, sample_shape, path) -> LayeredNetwork:
    chain = Chain(consts, path, input_name, sample_shape)
    _walk(chain, indexed, consts, {o.name for o in model.graph.output}, path)
    meta, input_names, unit_names, alphas = _modgraph_props(model, path)
    meta = meta if meta is not None else {"onnx": {
        "producer": f"{model.producer_name} {model.producer_version}".strip(), "ir_version": model.ir_version,
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "input": chain.input_name, "output": chain.output_name, "ignored_head_ops": chain.ignored_heads}}
    return LayeredNetwork(chain.layers(unit_names, alphas), input_names=input_names, metadata=meta,
                          source=str(path), source_format="onnx")


def _check_text(model, path) -> None:
    """Every name the walk compares is text: protobuf hands back ``bytes`` for a string field that
    is not valid UTF-8 (found by fuzzing: a traceback when compared with a ``str``)."""
    g = model.graph
    fields = [("metadata_props", [v for p in model.metadata_props for v in (p.key, p.value)]),
              ("graph inputs", [v.name for v in g.input]), ("graph outputs", [v.name for v in g.output]),
              ("initializers", [t.name for t in g.initializer]),
              ("external_data", [v for t in list(g.initializer) + [s.values for s in g.sparse_initializer]
                                 + [s.indices for s in g.sparse_initializer]
                                 for e in t.external_data for v in (e.key, e.value)]),
              ("sparse initializers", [s.values.name for s in g.sparse_initializer]
               + [s.indices.name for s in g.sparse_initializer])]
    for k, node in enumerate(g.node):
        fields.append((f"node #{k}", [node.name, node.op_type, node.domain, *node.input, *node.output,
                                      *(a.name for a in node.attribute)]))
    for where, values in fields:
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise FormatError(path, where, "names that are valid UTF-8 text", f"bytes {bad[0][:40]!r}")


def _walk(chain: Chain, indexed, consts, outputs: set, path) -> None:
    """Follow the flowing value from the input through one handler per node to the output."""
    consumers = {}
    for index, node in indexed:
        for name in dict.fromkeys(node.input):
            if name and name not in consts:
                consumers.setdefault(name, []).append((index, node))
    cur = chain.input_name
    for _ in range(len(indexed) + 1):             # each step moves to a later node: no cycle, no hang
        users = [(i, n) for i, n in consumers.get(cur, []) if n.op_type not in SHAPE_OPS]
        heads = [u for u in users if u[1].op_type in HEAD_OPS or (u[1].op_type == "Sub" and len(users) > 1)]
        rest = [u for u in users if u not in heads]
        if heads and chain.has_layers:
            chain.ignored_heads.extend(sorted({n.op_type for _, n in heads}))
        elif heads:
            rest = users
        if not rest:
            if not heads and cur not in outputs:
                raise FormatError(path, f"tensor {cur!r}", "the chain to end at a graph output "
                                  f"({', '.join(sorted(outputs))})", "a value that nothing uses")
            chain.output_name = cur
            chain.finish()
            return
        if len(rest) > 1:
            raise _NotAChain(path, f"tensor {cur!r}", "a single chain of layers (each value used once)",
                              "a branch into " + ", ".join(node_place(n, i) for i, n in rest))
        index, node = rest[0]
        handler = OP_HANDLERS.get(node.op_type)
        if handler is None and node.op_type not in GLUE_OPS:
            raise UnsupportedOpError(path, node_place(node, index), node.op_type, SUPPORTED_OPS)
        if handler is not None:
            handler(chain, node, cur, node_place(node, index))
        else:
            glue(chain, node, cur, node_place(node, index))
        if not node.output or not node.output[0]:
            raise FormatError(path, node_place(node, index), "an output tensor", "none")
        cur = node.output[0]
    raise FormatError(path, "ONNX graph", "a finite chain", "a walk longer than the node count")


def _modgraph_props(model, path):
    """Metadata, input names, unit names and exact alphas written by :func:`modgraph.io.export_onnx`, if any."""
    props = {p.key: p.value for p in model.metadata_props if p.key.startswith("modgraph.")}
    try:
        values = [json.loads(props[k]) if k in props else None
                  for k in ("modgraph.metadata", "modgraph.input_names", "modgraph.unit_names", "modgraph.alphas")]
    except json.JSONDecodeError as err:
        raise FormatError(path, "metadata_props", "JSON values under modgraph.*", str(err)) from err
    meta, input_names, unit_names, alphas = values
    checks = [("modgraph.metadata", meta, isinstance(meta, dict), "a JSON object"),
              ("modgraph.input_names", input_names, _is_list(input_names, str), "a list of strings"),
              ("modgraph.unit_names", unit_names, _is_list(unit_names, (list, type(None))), "a list of lists or nulls"),
              ("modgraph.alphas", alphas, _is_list(alphas, (int, float)), "a list of numbers")]
    for key, value, ok, expected in checks:
        if value is not None and not ok:
            raise FormatError(path, f"metadata_props {key!r}", expected, repr(value)[:80])
    return values


def _is_list(value, kinds) -> bool:
    return isinstance(value, list) and all(isinstance(v, kinds) and not isinstance(v, bool) for v in value)


def _sniff(path: Path, head: bytes) -> bool:
    """ONNX has no magic number: a ModelProto starts with ir_version (field 1, varint), or the
    file is named ``.onnx`` (so a damaged model is explained by this reader)."""
    return path.suffix.lower() == ".onnx" or (len(head) > 2 and head[0] == 0x08 and 0 < head[1] < 64
                                              and head[2] in (0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42))


register_reader(Reader("onnx", "ONNX model (a dense layer chain, or a CNN / residual / concat DAG)", _sniff,
                       read_onnx))
