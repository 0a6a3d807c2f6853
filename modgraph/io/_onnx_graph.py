"""Graph-level helpers shared by the ONNX chain and DAG readers: node places, a topological
order (refusing cycles and tensors with two producers) and the one real graph input."""
from __future__ import annotations

from modgraph.errors import FormatError

__all__ = ["node_place", "topological_order", "real_input"]


def node_place(node, index: int | None = None) -> str:
    """``node 'name' (Op)`` for error messages (the graph index or outputs when unnamed)."""
    name = node.name or (f"#{index}" if index is not None else f"-> {', '.join(node.output)}")
    return f"node {name!r} ({node.op_type})"


def topological_order(indexed, path) -> list[int]:
    """Kahn's algorithm over tensor dependencies (nodes by graph index): the graph indices in an
    order where every producer comes before its consumers; a cycle raises :class:`FormatError`."""
    nodes = dict(indexed)
    producer = {}
    for k, node in indexed:
        for out in node.output:
            if not out:                            # an omitted optional output
                continue
            if out in producer:
                raise FormatError(path, node_place(node, k), f"a single producer of tensor {out!r}",
                                  f"also produced by {node_place(nodes[producer[out]], producer[out])}")
            producer[out] = k
    waiting = {k: {i for i in n.input if i in producer} for k, n in indexed}
    consumers = {}
    for k, needs in waiting.items():
        for i in needs:
            consumers.setdefault(i, []).append(k)
    ready = sorted((k for k, needs in waiting.items() if not needs), reverse=True)
    order = []
    while ready:
        k = ready.pop()
        order.append(k)
        for out in nodes[k].output:
            for c in consumers.get(out, ()):
                waiting[c].discard(out)
                if not waiting[c]:
                    ready.append(c)
    if len(order) != len(nodes):
        stuck = [node_place(nodes[k], k) for k, needs in waiting.items() if needs]
        raise FormatError(path, "ONNX graph", "an acyclic graph (a DAG)",
                          f"a cycle through {', '.join(stuck[:5])}" + (" ..." if len(stuck) > 5 else ""))
    return order


def real_input(graph, consts, path):
    """The real input's name and static per-sample shape (dims after the batch, None when unknown)."""
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise FormatError(path, "graph inputs", "exactly one non-constant input",
                          f"{len(inputs)}: {', '.join(repr(i.name) for i in inputs)}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims[1:])
    return inputs[0].name, (shape if shape and all(isinstance(d, int) and d > 0 for d in shape) else None)
