"""Constant folding of an ONNX graph's metadata subgraph with numpy.

A tensor is *data* iff it depends on the graph input through ops other than ``Shape``/``Size``
(design §1); everything else — initializers, ``Constant`` nodes and the shape arithmetic that
exporters emit (``Shape → Gather → Sub → Div → Unsqueeze → Concat(axis=0) → Pad``) — is a
constant, evaluated here on demand. ``Shape`` of a data tensor reads the static shape the DAG
reader tracks (batch = the input's static batch size, or 1 when it is symbolic). Every op that
could allocate (``ConstantOfShape``, ``Range``, ``Expand``, ``Tile``) checks its size first.
"""
from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto, helper

__all__ = ["FOLD_OPS", "MAX_FOLD_ELEMENTS", "FoldError", "attrs", "as_str"]

#: Largest tensor the folder creates (shape arithmetic is tiny; anything bigger is refused).
MAX_FOLD_ELEMENTS = 1 << 24

_NP_TYPES = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.FLOAT16: np.float16,
             TensorProto.INT64: np.int64, TensorProto.INT32: np.int32, TensorProto.INT8: np.int8,
             TensorProto.UINT8: np.uint8, TensorProto.BOOL: np.bool_, TensorProto.INT16: np.int16}


def attrs(node) -> dict:
    """A node's attributes as Python values."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def as_str(v) -> str:
    """A string attribute (onnx gives bytes)."""
    return v.decode() if isinstance(v, bytes) else str(v)


class FoldError(ValueError):
    """A metadata op the folder cannot evaluate (the reader turns it into a FormatError)."""


def _size_ok(n) -> int:
    """Checked before a folded constant is allocated (also against ``modgraph.io.limits``)."""
    from modgraph.io.limits import current_limits
    cap = min(MAX_FOLD_ELEMENTS, current_limits().max_array_bytes // 8)
    n = int(n)
    if n < 0 or n > cap:
        raise FoldError(f"a constant of at most {cap} elements, found {n}")
    return n


def _div(a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        if np.any(b == 0):
            raise FoldError("a non-zero integer divisor")
        return (np.trunc(a / b)).astype(np.result_type(a, b))      # ONNX integer Div truncates
    return a / b


def _gather(x, node, a):
    idx = np.asarray(x[1]).astype(np.int64)
    return np.take(x[0], idx, axis=a.get("axis", 0))


def _unsqueeze(x, node, a):
    axes = a.get("axes") if "axes" in a else x[1].tolist()
    out = x[0]
    rank = out.ndim + len(axes)
    for ax in sorted(int(v) % rank for v in axes):
        out = np.expand_dims(out, ax)
    return out


def _squeeze(x, node, a):
    axes = a.get("axes") if "axes" in a else (x[1].tolist() if len(x) > 1 and x[1] is not None else None)
    return np.squeeze(x[0]) if axes is None else np.squeeze(x[0], axis=tuple(int(v) for v in axes))


def _slice(x, node, a):
    data = x[0]
    if "starts" in a:                                  # opset < 10: attributes
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = x[1].tolist(), x[2].tolist()
        axes = x[3].tolist() if len(x) > 3 and x[3] is not None else None
        steps = x[4].tolist() if len(x) > 4 and x[4] is not None else None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * data.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), None if abs(e) >= 2**62 else int(e), int(st))
    return data[tuple(index)]


def _constant_of_shape(x, node, a):
    shape = [int(v) for v in x[0].tolist()]
    _size_ok(math.prod(shape))
    value = helper.get_attribute_value(node.attribute[0]) if node.attribute else None
    fill = np.zeros(1, np.float32) if value is None else _tensor_value(value)
    return np.full(shape, fill.reshape(-1)[0], dtype=fill.dtype)


def _tensor_value(t):
    from onnx import numpy_helper
    return numpy_helper.to_array(t)


def _range(x, node, a):
    start, limit, delta = (v.reshape(-1)[0] for v in x)
    if delta == 0:
        raise FoldError("a non-zero Range delta")
    _size_ok(max(0, math.ceil((limit - start) / delta)))
    return np.arange(start, limit, delta, dtype=x[0].dtype)


def _reshape(x, node, a):
    shape = [int(v) for v in x[1].tolist()]
    shape = [x[0].shape[i] if v == 0 and not a.get("allowzero", 0) else v for i, v in enumerate(shape)]
    return x[0].reshape(shape)


def _expand(x, node, a):
    shape = np.broadcast_shapes(x[0].shape, tuple(int(v) for v in x[1].tolist()))
    _size_ok(math.prod(shape))
    return np.broadcast_to(x[0], shape).copy()


def _tile(x, node, a):
    reps = [int(v) for v in x[1].tolist()]
    _size_ok(x[0].size * math.prod(reps))
    return np.tile(x[0], reps)


def _cast(x, node, a):
    to = _NP_TYPES.get(a.get("to"))
    if to is None:
        raise FoldError(f"a Cast to a numeric type, found to={a.get('to')}")
    return x[0].astype(to)


def _concat(x, node, a):
    return np.concatenate([np.asarray(v) for v in x], axis=a.get("axis", 0))


def _reduce(fn):
    def run(x, node, a):
        axes = a.get("axes") if "axes" in a else (x[1].tolist() if len(x) > 1 and x[1] is not None else None)
        return fn(x[0], axis=None if axes is None else tuple(int(v) for v in axes), keepdims=bool(a.get("keepdims", 1)))
    return run


def _binary(fn):
    return lambda x, node, a: fn(x[0], x[1])


#: op type -> fn(list of input arrays (None for an omitted optional input), node, attributes).
#: ``Shape``/``Size`` of data tensors are answered by the reader, not here.
FOLD_OPS = {
    "Identity": lambda x, n, a: x[0], "Gather": _gather, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze,
    "Slice": _slice, "Concat": _concat, "Cast": _cast, "ConstantOfShape": _constant_of_shape,
    "Range": _range, "Reshape": _reshape, "Expand": _expand, "Tile": _tile,
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply), "Div": _binary(_div),
    "Neg": lambda x, n, a: -x[0], "Abs": lambda x, n, a: np.abs(x[0]), "Floor": lambda x, n, a: np.floor(x[0]),
    "Ceil": lambda x, n, a: np.ceil(x[0]), "Sqrt": lambda x, n, a: np.sqrt(x[0]),
    "Min": lambda x, n, a: np.minimum.reduce(x), "Max": lambda x, n, a: np.maximum.reduce(x),
    "Equal": _binary(np.equal), "Less": _binary(np.less), "Greater": _binary(np.greater),
    "Not": lambda x, n, a: np.logical_not(x[0]), "Where": lambda x, n, a: np.where(x[0], x[1], x[2]),
    "ReduceProd": _reduce(np.prod), "ReduceSum": _reduce(np.sum), "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min), "Transpose": lambda x, n, a: np.transpose(x[0], a.get("perm")),
    "Shape": lambda x, n, a: np.asarray(x[0].shape[a.get("start", 0):a.get("end")], np.int64),
    "Size": lambda x, n, a: np.asarray(x[0].size, np.int64),
}
