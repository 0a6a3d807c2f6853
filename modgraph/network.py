"""The neutral network model every loader returns: a chain of sparse dense layers.

Orientation is fixed here, once: a layer's ``weight`` is a CSR matrix of shape
``(n_out, n_in)`` whose *stored entries are the surviving edges* (the mask). An entry
may be stored with the value 0.0 (a surviving weight that happens to be zero); an
entry that is not stored is pruned. Loaders transpose exactly once, into this form.

Examples
--------
>>> import numpy as np
>>> net = LayeredNetwork([
...     Layer.from_dense(np.array([[1.0, 0.0], [0.0, -2.0]]), activation="relu"),
...     Layer.from_dense(np.array([[1.0, 1.0]]), np.array([0.5]), activation="identity"),
... ])
>>> net.widths
(2, 2, 1)
>>> net.forward(np.array([[1.0, -1.0]])).tolist()
[[3.5]]
>>> net.summary()["n_edges"]
4
"""
from __future__ import annotations

import json
from dataclasses import InitVar, dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.special import erf as _erf

from modgraph.errors import FormatError

__all__ = ["Layer", "LayeredNetwork", "ACTIVATIONS"]


def _softmax(z: np.ndarray, alpha: float) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray, alpha: float) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


#: Activation name -> function(z, alpha). ``alpha`` is only read by ``leaky_relu`` and ``elu``.
ACTIVATIONS: Mapping[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "identity": lambda z, a: z,
    "relu": lambda z, a: np.maximum(z, 0.0),
    "relu6": lambda z, a: np.clip(z, 0.0, 6.0),                             # MobileNet's ReLU6
    "leaky_relu": lambda z, a: np.where(z >= 0, z, a * z),
    "elu": lambda z, a: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0.0))),
    "sigmoid": lambda z, a: 0.5 * (1.0 + np.tanh(0.5 * z)),   # overflow-free logistic
    "tanh": lambda z, a: np.tanh(z),
    "gelu": lambda z, a: 0.5 * z * (1.0 + _erf(z / np.sqrt(2.0))),          # exact (Erf) form
    "silu": lambda z, a: z * (0.5 * (1.0 + np.tanh(0.5 * z))),               # x * sigmoid(x)
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Layer:
    """One dense layer whose pruned weights are simply not stored.

    Parameters
    ----------
    weight : scipy.sparse matrix or array, shape (n_out, n_in)
        Converted to canonical CSR; stored entries are the surviving edges.
    bias : array (n_out,), optional
        Zeros when omitted.
    activation : str
        One of :data:`ACTIVATIONS`.
    alpha : float
        Negative slope of ``leaky_relu`` (and scale of ``elu``); ignored otherwise.
    unit_names : sequence of str, optional
        A name per output unit (class names, feature names).
    copy : bool
        Copy ``weight``'s arrays and ``bias`` (the default). Readers that built them
        for this layer pass ``False`` to hand them over without a copy (the layer then
        holds them, made read-only; the caller must not modify or reuse them).
    """

    weight: sp.csr_matrix
    bias: np.ndarray | None = None
    activation: str = "relu"
    alpha: float = 0.01
    unit_names: tuple[str, ...] | None = None
    kind: str = field(default="dense")
    copy: InitVar[bool] = True

    def __post_init__(self, copy: bool = True):
        w = self.weight
        if not sp.issparse(w):
            raise FormatError(None, "layer weight", "a scipy.sparse matrix (use Layer.from_dense)",
                              type(w).__name__)
        w = w if (not copy and isinstance(w, sp.csr_matrix)) else sp.csr_matrix(w, copy=copy)
        w.sum_duplicates()           # canonical: sorted indices, no duplicates; keeps explicit zeros
        if w.data.dtype.kind != "f":
            w = w.astype(np.float64)
        bias = np.zeros(w.shape[0], w.dtype) if self.bias is None else np.array(self.bias, copy=copy)
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", bias)
        if self.unit_names is not None:
            object.__setattr__(self, "unit_names", tuple(str(n) for n in self.unit_names))
        for a in (w.data, w.indices, w.indptr, bias):
            _readonly(a)

    @classmethod
    def from_dense(cls, weight, bias=None, *, activation: str = "relu", mask=None,
                   alpha: float = 0.01, unit_names=None) -> "Layer":
        """Build a layer from a dense ``(n_out, n_in)`` array.

        The surviving edges are ``mask`` when given (so a kept weight may be 0.0),
        else the non-zero entries.
        """
        weight = np.asarray(weight)
        if weight.ndim != 2:
            raise FormatError(None, "layer weight", "a 2-D array (n_out, n_in)", f"shape {weight.shape}")
        keep = weight != 0 if mask is None else np.asarray(mask, dtype=bool)
        if keep.shape != weight.shape:
            raise FormatError(None, "layer mask", f"shape {weight.shape}", f"shape {keep.shape}")
        rows, cols = np.nonzero(keep)
        dtype = weight.dtype if weight.dtype.kind == "f" else np.float64
        w = sp.csr_matrix((weight[rows, cols].astype(dtype), (rows, cols)), shape=weight.shape)
        return cls(w, bias, activation=activation, alpha=alpha, unit_names=unit_names)

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def n_edges(self) -> int:
        """Number of surviving edges (stored entries)."""
        return int(self.weight.nnz)

    @property
    def mask(self) -> np.ndarray:
        """Dense boolean ``(n_out, n_in)`` mask of surviving edges."""
        m = np.zeros(self.weight.shape, dtype=bool)
        w = self.weight
        m[np.repeat(np.arange(w.shape[0]), np.diff(w.indptr)), w.indices] = True
        return m

    def dense(self) -> np.ndarray:
        """The weight as a dense array (pruned entries are 0)."""
        return self.weight.toarray()

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Pre-activation then activation for a batch ``x`` of shape (n, n_in)."""
        z = (self.weight @ x.T).T + self.bias
        return ACTIVATIONS[self.activation](z, self.alpha)


class LayeredNetwork:
    """An ordered chain of :class:`Layer`, validated once at construction.

    Parameters
    ----------
    layers : sequence of Layer
        ``layers[i].n_out == layers[i + 1].n_in``.
    input_names : sequence of str, optional
        A name per input unit.
    metadata : mapping, optional
        JSON-serialisable information travelling with the network (task spec, ground
        truth, training config, pruning history, accuracy, ...). Stored as a deep copy.
    source : str, optional
        Where the network came from (a file path); named in validation errors.
    source_format : str, optional
        The reader that produced it (``"modgraph-hdf5"``, ``"onnx"``, ``"keras-h5"``, ...).
    """

    def __init__(self, layers: Sequence[Layer], *, input_names=None, metadata=None,
                 source: str | None = None, source_format: str | None = None):
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.input_names = None if input_names is None else tuple(str(n) for n in input_names)
        self.source = None if source is None else str(source)
        self.source_format = source_format
        try:
            self._metadata_json = json.dumps({} if metadata is None else dict(metadata), sort_keys=True)
        except (TypeError, ValueError) as err:
            raise FormatError(self.source or "<network>", "metadata", "JSON-serialisable values",
                              str(err)) from err
        self._validate()

    # -- validation -------------------------------------------------------------------------------
    def _validate(self) -> None:
        where = self.source or "<network>"
        if not self.layers:
            raise FormatError(where, "layers", "at least one layer", "none")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise FormatError(where, f"layer {i}", "a modgraph.network.Layer", type(layer).__name__)
            if layer.activation not in ACTIVATIONS:
                raise FormatError(where, f"layer {i} activation",
                                  "one of " + ", ".join(sorted(ACTIVATIONS)), repr(layer.activation))
            if layer.bias.shape != (layer.n_out,):
                raise FormatError(where, f"layer {i} bias", f"shape ({layer.n_out},)", f"shape {layer.bias.shape}")
            for name, arr in (("weight", layer.weight.data), ("bias", layer.bias)):
                with np.errstate(over="ignore", invalid="ignore"):   # a NaN/Inf makes the sum non-finite
                    suspect = not np.isfinite(arr.sum())
                if suspect and not np.isfinite(arr).all():
                    raise FormatError(where, f"layer {i} {name}", "finite values",
                                      f"{int((~np.isfinite(arr)).sum())} NaN/Inf value(s)")
            if layer.unit_names is not None and len(layer.unit_names) != layer.n_out:
                raise FormatError(where, f"layer {i} unit names", f"{layer.n_out} names",
                                  f"{len(layer.unit_names)}")
            if i and self.layers[i - 1].n_out != layer.n_in:
                raise FormatError(where, f"layer {i} weight", f"{self.layers[i - 1].n_out} inputs "
                                  f"(the width of layer {i - 1})", f"{layer.n_in}")
        if self.input_names is not None and len(self.input_names) != self.n_inputs:
            raise FormatError(where, "input names", f"{self.n_inputs} names", f"{len(self.input_names)}")

    # -- shape --------------------------------------------------------------------------------------
    @property
    def metadata(self) -> dict:
        """A fresh copy of the metadata (the network itself is immutable)."""
        return json.loads(self._metadata_json)

    @property
    def widths(self) -> tuple[int, ...]:
        """Units per layer, inputs first: ``(n_in, n_hidden_1, ..., n_out)``."""
        return (self.layers[0].n_in,) + tuple(layer.n_out for layer in self.layers)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_in

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_out

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return (f"LayeredNetwork(widths={list(self.widths)}, edges={self.summary()['n_edges']}, "
                f"activations={[layer.activation for layer in self.layers]})")

    # -- computation ------------------------------------------------------------------------------
    def forward(self, x) -> np.ndarray:
        """Compute the network on a batch ``x`` of shape (n, n_in) (or one sample (n_in,))."""
        x = np.asarray(x, dtype=np.result_type(np.float64, *(l.weight.dtype for l in self.layers)))
        single = x.ndim == 1
        h = x[None, :] if single else x
        if h.ndim != 2 or h.shape[1] != self.n_inputs:
            raise ValueError(f"forward: expected input of shape (n, {self.n_inputs}), got {x.shape}")
        for layer in self.layers:
            h = layer.apply(h)
        return h[0] if single else h

    def summary(self) -> dict:
        """Units per layer, edges per layer, sparsity, as a JSON-ready dict."""
        rows = []
        for i, layer in enumerate(self.layers):
            size = layer.n_in * layer.n_out
            rows.append({"index": i, "n_in": layer.n_in, "n_out": layer.n_out, "n_edges": layer.n_edges,
                         "n_weights": size, "density": layer.n_edges / size if size else 0.0,
                         "activation": layer.activation})
        n_edges = sum(r["n_edges"] for r in rows)
        n_weights = sum(r["n_weights"] for r in rows)
        return {"widths": list(self.widths), "n_units": int(sum(self.widths)), "n_edges": n_edges,
                "n_weights": n_weights, "sparsity": 1.0 - n_edges / n_weights if n_weights else 0.0,
                "source_format": self.source_format, "layers": rows}
