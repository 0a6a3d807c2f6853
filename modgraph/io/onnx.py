"""ONNX reader: recover the chain of dense layers from an exported MLP graph.

A registry of small op handlers (``OP_HANDLERS``) walks forward from the graph's one real
input (ecosystem facts §1.4): ``Gemm`` (transB, alpha, beta) and ``MatMul`` (+ a constant
``Add``, either operand) start layers; activation ops tag the open layer; glue ops
(``Identity``, ``Cast``, ``Dropout``, ``Flatten``, ``Reshape``, ``Squeeze``, ``Unsqueeze``) pass
through; elementwise ``Add``/``Sub``/``Mul``/``Div`` with a constant and ``BatchNormalization``
are folded exactly into the neighbouring layer (into its outputs before its activation, into
the next layer's inputs after it; input preprocessing thus lands in the first layer). A
classifier head (``ArgMax``, ``ZipMap``, ``Concat``, skl2onnx's ``Sub``+``Concat``) ends the
chain; the ops it holds are listed in ``metadata["onnx"]["ignored_head_ops"]``. An op
outside the registry (``Conv``, ``LSTM``, ...) raises :class:`~modgraph.errors.UnsupportedOpError`
naming the node and op and listing the supported ops; a branch, a cycle, ``Gemm(transA=1)``
or widths that do not chain raise :class:`~modgraph.errors.FormatError` naming the node.
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

from modgraph.errors import FormatError, UnsupportedOpError
from modgraph.io._chain import Chain
from modgraph.io._onnx_ops import GLUE_OPS, HEAD_OPS, OP_HANDLERS, SHAPE_OPS, glue
from modgraph.io._onnx_skeleton import read_skeleton
from modgraph.io._onnx_tensors import Constants
from modgraph.io.registry import Reader, register_reader
from modgraph.network import LayeredNetwork

__all__ = ["read_onnx", "SUPPORTED_OPS"]

#: Every op the reader understands (handlers, glue and classifier-head ops).
SUPPORTED_OPS = tuple(sorted(set(OP_HANDLERS) | GLUE_OPS | HEAD_OPS | SHAPE_OPS | {"Constant"}))


def read_onnx(path) -> LayeredNetwork:
    """Read an ONNX model holding a chain of dense layers; defects raise :class:`FormatError`."""
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
    _check_acyclic(indexed, path)
    chain = Chain(consts, path, *_real_input(model.graph, consts, path))
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


def _node_place(node, index: int | None = None) -> str:
    name = node.name or (f"#{index}" if index is not None else f"-> {', '.join(node.output)}")
    return f"node {name!r} ({node.op_type})"


def _check_acyclic(indexed, path) -> None:
    """Kahn's algorithm over tensor dependencies (nodes by graph index): every node must become ready."""
    nodes = dict(indexed)
    producer = {}
    for k, node in indexed:
        for out in node.output:
            if not out:                            # an omitted optional output
                continue
            if out in producer:
                raise FormatError(path, _node_place(node, k), f"a single producer of tensor {out!r}",
                                  f"also produced by {_node_place(nodes[producer[out]], producer[out])}")
            producer[out] = k
    waiting = {k: {i for i in n.input if i in producer} for k, n in indexed}
    consumers = {}
    for k, needs in waiting.items():
        for i in needs:
            consumers.setdefault(i, []).append(k)
    ready = [k for k, needs in waiting.items() if not needs]
    done = 0
    while ready:
        k = ready.pop()
        done += 1
        for out in nodes[k].output:
            for c in consumers.get(out, ()):
                waiting[c].discard(out)
                if not waiting[c]:
                    ready.append(c)
    if done != len(nodes):
        stuck = [_node_place(nodes[k], k) for k, needs in waiting.items() if needs]
        raise FormatError(path, "ONNX graph", "an acyclic graph (a DAG)",
                          f"a cycle through {', '.join(stuck[:5])}" + (" ..." if len(stuck) > 5 else ""))


def _real_input(graph, consts, path):
    """The real input's name and static per-sample shape (dims after the batch, None when unknown)."""
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise FormatError(path, "graph inputs", "exactly one non-constant input",
                          f"{len(inputs)}: {', '.join(repr(i.name) for i in inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims[1:])
    return inputs[0].name, (shape if shape and all(isinstance(d, int) and d > 0 for d in shape) else None)


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
            raise FormatError(path, f"tensor {cur!r}", "a single chain of layers (each value used once)",
                              "a branch into " + ", ".join(_node_place(n, i) for i, n in rest))
        index, node = rest[0]
        handler = OP_HANDLERS.get(node.op_type)
        if handler is None and node.op_type not in GLUE_OPS:
            raise UnsupportedOpError(path, _node_place(node, index), node.op_type, SUPPORTED_OPS)
        if handler is not None:
            handler(chain, node, cur, _node_place(node, index))
        else:
            glue(chain, node, cur, _node_place(node, index))
        if not node.output or not node.output[0]:
            raise FormatError(path, _node_place(node, index), "an output tensor", "none")
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


register_reader(Reader("onnx", "ONNX model of a dense layer chain (Gemm/MatMul MLP)", _sniff, read_onnx))
