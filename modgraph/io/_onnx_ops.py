"""One small handler per ONNX op (the registry the ONNX reader walks with).

A handler gets ``(chain, node, cur, place)``: the :class:`~modgraph.io._chain.Chain` so far,
the node, the name of the tensor flowing into it and the node's printable place.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from onnx import AttributeProto, TensorProto, helper

from modgraph.io._chain import dense_to_csr

__all__ = ["OP_HANDLERS", "GLUE_OPS", "HEAD_OPS", "SHAPE_OPS", "glue"]

#: Ops that pass the value through unchanged for a 2-D MLP (ecosystem facts §1.4 rule 2).
GLUE_OPS = frozenset({"Identity", "Cast", "Dropout", "Flatten", "Reshape", "Squeeze", "Unsqueeze"})
#: Classifier-head ops that end the chain (skl2onnx labels, ZipMap, binary Sub/Concat).
HEAD_OPS = frozenset({"ArgMax", "ArgMin", "TopK", "ZipMap", "ArrayFeatureExtractor", "Concat"})
#: Ops that read only the shape of the value (dynamic reshapes), not its numbers.
SHAPE_OPS = frozenset({"Shape", "Size"})
_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


_ATTR_TYPES = {"transA": AttributeProto.INT, "transB": AttributeProto.INT, "axis": AttributeProto.INT,
               "to": AttributeProto.INT, "training_mode": AttributeProto.INT, "alpha": AttributeProto.FLOAT,
               "beta": AttributeProto.FLOAT, "epsilon": AttributeProto.FLOAT}


def _attrs(chain, node, place: str) -> dict:
    """The node's attributes; those the handlers read must have their ONNX type (an INT ``transB``, ...)."""
    out = {}
    for a in node.attribute:
        want = _ATTR_TYPES.get(a.name)
        if want is not None and a.type != want:
            raise chain.fail(f"{place} attribute {a.name!r}", f"an {AttributeProto.AttributeType.Name(want)} value",
                             f"type {AttributeProto.AttributeType.Name(a.type) if a.type in AttributeProto.AttributeType.values() else a.type}")
        if want is not None:
            out[a.name] = helper.get_attribute_value(a)
    return out


def constant_operand(chain, node, cur: str, place: str) -> tuple[np.ndarray, int]:
    """The constant operand of a binary op whose other operand is the flowing value."""
    ins = list(node.input)
    if len(ins) != 2 or ins.count(cur) != 1 or ins[1 - ins.index(cur)] not in chain.consts:
        raise chain.fail(place, "the flowing value and one constant operand",
                         "inputs " + ", ".join(repr(i) for i in ins))
    k = 1 - ins.index(cur)
    return chain.consts.array(ins[k], f"{place} input {ins[k]!r}").astype(np.float64), k


def glue(chain, node, cur: str, place: str) -> None:
    """A pass-through op: check it really leaves the values alone."""
    attrs = _attrs(chain, node, place)
    if not node.input or node.input[0] != cur:
        raise chain.fail(place, "the flowing value as first input", f"inputs {list(node.input)}")
    if node.op_type == "Cast" and attrs.get("to") not in _FLOAT_TYPES:
        raise chain.fail(place, "a Cast to a floating point type",
                         f"to={TensorProto.DataType.Name(attrs['to']) if 'to' in attrs else None}")
    if node.op_type == "Flatten" and attrs.get("axis", 1) != 1:
        raise chain.fail(place, "Flatten(axis=1) (keeps the batch dimension)", f"axis={attrs['axis']}")


def _weight(chain, name: str, place: str, *, transpose: bool) -> sp.csr_matrix:
    m = chain.consts.matrix(name, place)
    if sp.issparse(m):
        m = (m.T if transpose else m).tocsr()
        m.sort_indices()
        return m
    if 0 in m.shape:                         # units without a stored value: nothing to connect, memory per unit
        raise chain.fail(place, "a weight with at least one input and one output", f"shape {tuple(m.shape)}")
    return dense_to_csr(m.T if transpose else m)


def _gemm(chain, node, cur, place):
    ins, a = list(node.input), _attrs(chain, node, place)
    if len(ins) < 2 or ins[0] != cur or ins[1] not in chain.consts or (len(ins) > 2 and ins[2]
                                                                      and ins[2] not in chain.consts):
        raise chain.fail(place, "Gemm(flowing value, constant B[, constant C])", f"inputs {ins}")
    if a.get("transA", 0):
        raise chain.fail(place, "transA=0 (rows of the flowing value are samples)", "transA=1")
    w = _weight(chain, ins[1], f"{place} input B {ins[1]!r}", transpose=not a.get("transB", 0))
    if a.get("alpha", 1.0) != 1.0:
        w.data *= w.dtype.type(a["alpha"])
    b = np.zeros(w.shape[0])
    if len(ins) > 2 and ins[2]:
        c = chain.consts.array(ins[2], f"{place} input C {ins[2]!r}").astype(np.float64) * a.get("beta", 1.0)
        b = chain.features(c, w.shape[0], first=False, where=f"{place} input C {ins[2]!r}")
    chain.start_layer(w, b, place)


def _matmul(chain, node, cur, place):
    ins = list(node.input)
    if len(ins) != 2 or ins[0] != cur or ins[1] not in chain.consts:
        raise chain.fail(place, "MatMul(flowing value, constant weight (in, out))", f"inputs {ins}")
    w = _weight(chain, ins[1], f"{place} input {ins[1]!r}", transpose=True)
    chain.start_layer(w, np.zeros(w.shape[0]), place)


def _add(chain, node, cur, place):
    c, _ = constant_operand(chain, node, cur, place)
    chain.affine(1.0, c, place)


def _sub(chain, node, cur, place):
    c, k = constant_operand(chain, node, cur, place)
    chain.affine(1.0, -c, place) if k == 1 else chain.affine(-1.0, c, place)     # x - c  or  c - x


def _mul(chain, node, cur, place):
    c, _ = constant_operand(chain, node, cur, place)
    chain.affine(c, 0.0, place)


def _div(chain, node, cur, place):
    c, k = constant_operand(chain, node, cur, place)
    if k != 1 or np.any(c == 0):
        raise chain.fail(place, "Div(flowing value, non-zero constant)",
                         "a constant numerator" if k != 1 else "a zero divisor")
    chain.affine(1.0 / c, 0.0, place)


def _batch_norm(chain, node, cur, place):
    ins, a = list(node.input), _attrs(chain, node, place)
    if len(ins) != 5 or ins[0] != cur or any(i not in chain.consts for i in ins[1:]) or a.get("training_mode", 0):
        raise chain.fail(place, "inference BatchNormalization(x, constant scale, B, mean, var)",
                         f"inputs {ins}, training_mode={a.get('training_mode', 0)}")
    gamma, beta, mean, var = (chain.consts.array(i, f"{place} input {i!r}").astype(np.float64) for i in ins[1:])
    if np.any(var + a.get("epsilon", 1e-5) <= 0):
        raise chain.fail(place, "variances with var + epsilon > 0", "a non-positive value")
    k = gamma / np.sqrt(var + a.get("epsilon", 1e-5))
    chain.affine(k, beta - mean * k, place)


def _activation(name, default_alpha=0.01):
    def handler(chain, node, cur, place):
        a = _attrs(chain, node, place)
        if name in ("softmax", "log_softmax") and a.get("axis", -1) not in (-1, 1):
            raise chain.fail(place, "a softmax over the unit axis (axis=-1 or 1)", f"axis={a['axis']}")
        if node.input[0] != cur:
            raise chain.fail(place, "the flowing value as input", f"inputs {list(node.input)}")
        chain.activate(name, a.get("alpha", default_alpha), place)
    return handler


#: op type -> handler(chain, node, cur, place)
OP_HANDLERS = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Sub": _sub, "Mul": _mul, "Div": _div,
    "BatchNormalization": _batch_norm,
    "Relu": _activation("relu"), "LeakyRelu": _activation("leaky_relu"), "Elu": _activation("elu", 1.0),
    "Sigmoid": _activation("sigmoid"), "Tanh": _activation("tanh"), "Softmax": _activation("softmax"),
    "LogSoftmax": _activation("log_softmax"),
}
