"""The dense-layer chain every foreign-format reader builds (ONNX, Keras, torch state dicts).

Layers are added in order (``start_layer``), tagged by an activation (``activate``), and
elementwise affine maps ``y = x * s + t`` (constant Add/Sub/Mul/Div, BatchNorm in inference
form, input preprocessing) are folded exactly: into the open layer's outputs before its
activation, or into the next layer's inputs after it (W' = W diag(s), b' = b + W t).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from modgraph.errors import FormatError
from modgraph.io._memory import new_array
from modgraph.network import Layer

__all__ = ["Chain", "dense_to_csr"]

_BLOCK_ENTRIES = 2**19          # entries per row block: temporaries of a few MB whatever the width


class Chain:
    """Layers found so far, the open (not yet activated) layer, and a pending input affine.

    ``consts`` are the ONNX graph's constants (``None`` for the other readers), ``path`` the
    file named in errors, ``input_name``/``sample_shape`` the real input and its static
    per-sample shape (used to broadcast per-channel preprocessing constants; may be None).
    """

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
            s = self.features(self._s, w.shape[1], first=not self._done)
            t = self.features(self._t, w.shape[1], first=not self._done)
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
            sv, tv = self.features(s, n, first=False, where=place), self.features(t, n, first=False, where=place)
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

    def features(self, c: np.ndarray, n: int, *, first: bool, where: str | None = None) -> np.ndarray:
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


def dense_to_csr(w: np.ndarray) -> sp.csr_matrix:
    """CSR of the non-zero entries of a dense (out, in) array (any strides), built in row blocks.

    Uses no nnz-sized int64 temporaries: column indices come from compressing a broadcast
    int32 ``arange`` with the same mask as the values. A C-contiguous, writable float ``w``
    that is at least 3/4 non-zero is taken over and compacted in place into the CSR's data
    (callers pass arrays they own), so a dense layer costs no second copy.
    """
    n_out, n_in = w.shape
    indptr = np.zeros(n_out + 1, np.int64)
    rows = max(1, _BLOCK_ENTRIES // max(n_in, 1))
    for r in range(0, n_out, rows):                           # per block: a small boolean temporary
        indptr[r + 1:r + 1 + rows] = np.count_nonzero(w[r:r + rows], axis=1)
    np.cumsum(indptr, out=indptr)
    nnz = int(indptr[-1])
    dtype = np.result_type(w.dtype, np.float32)               # float16 and ints widen (scipy has no float16)
    columns = np.arange(n_in, dtype=np.int32)
    owned = w.flags.c_contiguous and w.flags.writeable and w.dtype == dtype and 4 * nnz >= 3 * w.size
    indices = new_array(nnz, np.int32)
    if nnz == w.size:                                          # fully dense: no masking needed
        data = w.reshape(-1) if owned else np.array(w, dtype=dtype, order="C").reshape(-1)
        indices.reshape(n_out, n_in)[:] = columns
    else:
        # in place, the write position never passes the block being read (copied first if shifted)
        data = w.reshape(-1)[:nnz] if owned else new_array(nnz, dtype)
        full = np.tile(columns, min(rows, n_out))
        for r in range(0, n_out, rows):
            block = np.ascontiguousarray(w[r:r + rows])
            lo, hi = indptr[r], indptr[min(r + rows, n_out)]
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
