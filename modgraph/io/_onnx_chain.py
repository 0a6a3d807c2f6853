"""The dense-layer chain the ONNX reader builds, and one small handler per op (the registry).

A handler gets ``(chain, node, cur, place)``: the chain so far, the node, the name of the
tensor flowing into it and the node's printable place. Elementwise affine ops are kept as
``y = x * s + t`` and folded exactly: into the open layer's outputs (before its activation)
or into the next layer's inputs (W' = W diag(s), b' = b + W t).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from onnx import TensorProto, helper

from modgraph.errors import FormatError
from modgraph.network import Layer

__all__ = ["Chain", "OP_HANDLERS", "GLUE_OPS", "HEAD_OPS", "SHAPE_OPS"]

#: Ops that pass the value through unchanged for a 2-D MLP (ecosystem facts §1.4 rule 2).
GLUE_OPS = frozenset({"Identity", "Cast", "Dropout", "Flatten", "Reshape", "Squeeze", "Unsqueeze"})
#: Classifier-head ops that end the chain (skl2onnx labels, ZipMap, binary Sub/Concat).
HEAD_OPS = frozenset({"ArgMax", "ArgMin", "TopK", "ZipMap", "ArrayFeatureExtractor", "Concat"})
#: Ops that read only the shape of the value (dynamic reshapes), not its numbers.
SHAPE_OPS = frozenset({"Shape", "Size"})
_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
_ROWS_PER_BLOCK = 512


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class Chain:
    """Layers found so far, the open (not yet activated) layer, and a pending input affine."""

    def __init__(self, consts, path, input_name: str, sample_shape):
        self.consts, self.path = consts, path
        self.input_name, self.output_name = input_name, None
        self.sample_shape = sample_shape
        self.ignored_heads: list[str] = []
        self._done: list[list] = []            # [W csr, b, activation, alpha]
        self._open: list | None = None         # [W csr, b] before its activation
        self._s = self._t = None               # pending y = x * s + t (None: identity)
        self._pending_places: list[str] = []

    @property
    def has_layers(self) -> bool:
        return bool(self._done) or self._open is not None

    def fail(self, place, expected, found):
        return FormatError(self.path, place, expected, found)

    # -- layers --------------------------------------------------------------------------------
    def start_layer(self, w: sp.csr_matrix, b: np.ndarray, place: str) -> None:
        if self._open is not None:
            self._close("identity", 0.01)
        n_prev = self._done[-1][0].shape[0] if self._done else None
        if n_prev is not None and w.shape[1] != n_prev:
            raise self.fail(place, f"a weight with {n_prev} inputs (the width of layer {len(self._done) - 1})",
                            f"{w.shape[1]} inputs (weight shape (out, in) = {w.shape})")
        if self._s is not None:
            s = self._features(self._s, w.shape[1], first=not self._done)
            t = self._features(self._t, w.shape[1], first=not self._done)
            b = b + w @ t
            w.data *= s[w.indices].astype(w.dtype)
            self._s = self._t = None
            self._pending_places = []
        self._open = [w, b.astype(w.dtype)]

    def activate(self, name: str, alpha: float, place: str) -> None:
        if self._open is None or self._s is not None:
            raise self.fail(place, "an activation directly after a dense layer (Gemm/MatMul [+ Add])",
                            "an activation with no dense layer before it" if self._open is None
                            else "an activation after elementwise ops that follow an activated layer")
        self._close(name, alpha)

    def _close(self, name: str, alpha: float) -> None:
        self._done.append(self._open + [name, float(alpha)])
        self._open = None

    def affine(self, s, t, place: str) -> None:
        """Apply ``y = x * s + t`` (elementwise, constants broadcast over the features)."""
        s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
        if self._open is not None:
            w, b = self._open
            n = w.shape[0]
            sv, tv = self._features(s, n, first=False, where=place), self._features(t, n, first=False, where=place)
            w.data *= np.repeat(sv, np.diff(w.indptr)).astype(w.dtype)
            self._open[1] = (b * sv + tv).astype(w.dtype)
            return
        try:
            self._s = s if self._s is None else self._s * s
            self._t = t if self._t is None else self._t * s + t
        except ValueError as err:
            raise self.fail(place, "constants that broadcast with the earlier elementwise ops", str(err)) from err
        self._pending_places.append(place)

    def finish(self) -> None:
        if self._s is not None:
            raise self.fail(self._pending_places[0], "elementwise ops before a dense layer (they are folded into "
                            "its inputs)", "no dense layer after them")
        if self._open is not None:
            self._close("identity", 0.01)
        if not self._done:
            raise self.fail("ONNX graph", "at least one dense layer (Gemm or MatMul)", "none")

    def layers(self, unit_names=None, alphas=None) -> list[Layer]:
        """The finished layers; ``unit_names``/``alphas`` (one per layer) override when given."""
        n = len(self._done)
        names = unit_names if unit_names is not None and len(unit_names) == n else [None] * n
        alphas = alphas if alphas is not None and len(alphas) == n else [d[3] for d in self._done]
        return [Layer(w, b, activation=act, alpha=float(a), unit_names=u, copy=False)   # built here: hand over
                for (w, b, act, _), u, a in zip(self._done, names, alphas)]

    def _features(self, c: np.ndarray, n: int, *, first: bool, where: str | None = None) -> np.ndarray:
        """A constant as one value per feature: scalar, n values, or (first layer) the input's shape."""
        if c.size == 1:
            return np.full(n, float(c.reshape(-1)[0]))
        if c.size == n:
            return c.reshape(-1)
        shape = self.sample_shape
        if first and shape is not None and math.prod(shape) == n:
            try:
                return np.broadcast_to(c, (1,) + shape if c.ndim == len(shape) + 1 else shape).reshape(-1)
            except ValueError:
                pass
        raise self.fail(where or self._pending_places[0], f"a constant with 1 or {n} values (one per unit)",
                        f"shape {c.shape}")

    # -- operands ------------------------------------------------------------------------------
    def constant_operand(self, node, cur: str, place: str) -> tuple[np.ndarray, int]:
        """The constant operand of a binary op whose other operand is the flowing value."""
        ins = list(node.input)
        if len(ins) != 2 or ins.count(cur) != 1 or ins[1 - ins.index(cur)] not in self.consts:
            raise self.fail(place, "the flowing value and one constant operand",
                            "inputs " + ", ".join(repr(i) for i in ins))
        k = 1 - ins.index(cur)
        return self.consts.array(ins[k], f"{place} input {ins[k]!r}").astype(np.float64), k

    def glue(self, node, cur: str, place: str) -> None:
        attrs = _attrs(node)
        if not node.input or node.input[0] != cur:
            raise self.fail(place, "the flowing value as first input", f"inputs {list(node.input)}")
        if node.op_type == "Cast" and attrs.get("to") not in _FLOAT_TYPES:
            raise self.fail(place, "a Cast to a floating point type",
                            f"to={TensorProto.DataType.Name(attrs['to']) if 'to' in attrs else None}")
        if node.op_type == "Flatten" and attrs.get("axis", 1) != 1:
            raise self.fail(place, "Flatten(axis=1) (keeps the batch dimension)", f"axis={attrs['axis']}")


def dense_to_csr(w: np.ndarray) -> sp.csr_matrix:
    """CSR of the non-zero entries of a dense (out, in) array (any strides), built in row blocks.

    Uses no nnz-sized int64 temporaries: column indices come from compressing a broadcast
    int32 ``arange`` with the same mask as the values. A C-contiguous, writable float ``w``
    that is at least 3/4 non-zero is taken over and compacted in place into the CSR's data
    (callers pass arrays they own), so a dense layer costs no second copy.
    """
    n_out, n_in = w.shape
    indptr = np.zeros(n_out + 1, np.int64)
    np.cumsum(np.count_nonzero(w, axis=1), out=indptr[1:])
    nnz = int(indptr[-1])
    dtype = w.dtype if w.dtype.kind == "f" else np.float64
    columns = np.arange(n_in, dtype=np.int32)
    owned = w.flags.c_contiguous and w.flags.writeable and w.dtype == dtype and 4 * nnz >= 3 * w.size
    if nnz == w.size:                                          # fully dense: no masking needed
        data = w.reshape(-1) if owned else np.array(w, dtype=dtype, order="C").reshape(-1)
        indices = np.tile(columns, n_out)
    else:
        # in place, the write position never passes the block being read (copied first if shifted)
        data = w.reshape(-1)[:nnz] if owned else np.empty(nnz, dtype)
        indices = np.empty(nnz, np.int32)
        full = np.tile(columns, min(_ROWS_PER_BLOCK, n_out))
        for r in range(0, n_out, _ROWS_PER_BLOCK):
            block = np.ascontiguousarray(w[r:r + _ROWS_PER_BLOCK])
            lo, hi = indptr[r], indptr[min(r + _ROWS_PER_BLOCK, n_out)]
            if hi - lo == block.size:                          # a block without zeros: no masking
                if not (owned and lo == r * n_in):
                    data[lo:hi] = block.reshape(-1)
                indices[lo:hi] = full[:block.size]
                continue
            keep = block != 0
            data[lo:hi] = block[keep]
            indices[lo:hi] = np.broadcast_to(columns, block.shape)[keep]
    m = sp.csr_matrix((data, indices, indptr), shape=w.shape, copy=False)
    m.has_canonical_format = True
    return m


def _weight(chain, name: str, place: str, *, transpose: bool) -> sp.csr_matrix:
    m = chain.consts.matrix(name, place)
    if sp.issparse(m):
        m = (m.T if transpose else m).tocsr()
        m.sort_indices()
        return m if m.dtype.kind == "f" else m.astype(np.float64)
    return dense_to_csr(m.T if transpose else m)


def _gemm(chain, node, cur, place):
    ins, a = list(node.input), _attrs(node)
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
        b = chain._features(c, w.shape[0], first=False, where=f"{place} input C {ins[2]!r}")
    chain.start_layer(w, b, place)


def _matmul(chain, node, cur, place):
    ins = list(node.input)
    if len(ins) != 2 or ins[0] != cur or ins[1] not in chain.consts:
        raise chain.fail(place, "MatMul(flowing value, constant weight (in, out))", f"inputs {ins}")
    w = _weight(chain, ins[1], f"{place} input {ins[1]!r}", transpose=True)
    chain.start_layer(w, np.zeros(w.shape[0]), place)


def _add(chain, node, cur, place):
    c, _ = chain.constant_operand(node, cur, place)
    chain.affine(1.0, c, place)


def _sub(chain, node, cur, place):
    c, k = chain.constant_operand(node, cur, place)
    chain.affine(1.0, -c, place) if k == 1 else chain.affine(-1.0, c, place)     # x - c  or  c - x


def _mul(chain, node, cur, place):
    c, _ = chain.constant_operand(node, cur, place)
    chain.affine(c, 0.0, place)


def _div(chain, node, cur, place):
    c, k = chain.constant_operand(node, cur, place)
    if k != 1 or np.any(c == 0):
        raise chain.fail(place, "Div(flowing value, non-zero constant)",
                         "a constant numerator" if k != 1 else "a zero divisor")
    chain.affine(1.0 / c, 0.0, place)


def _batch_norm(chain, node, cur, place):
    ins, a = list(node.input), _attrs(node)
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
        a = _attrs(node)
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
