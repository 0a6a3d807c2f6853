"""The modgraph HDF5 format (documented in ``docs/format.md``): write and read.

Layout (format ``"modgraph"``, version ``1.0``; version ``2.0``, DAG networks, is
:mod:`modgraph.io.hdf5_dag`)::

    / attrs: format="modgraph", format_version="1.0", weight_orientation="out_in",
             n_layers, layer_sizes int64[L+1], metadata_json (JSON string)
    /input_names                    str[n_in]            (optional)
    /layers/000 ... /layers/{L-1}   attrs: kind="dense", activation, alpha, in_features, out_features, nnz
        weight/  attrs: encoding-type="csr_matrix", encoding-version="0.1.0", shape=[out, in]
            data     float32|float64[nnz]   (stored entries = surviving edges; 0.0 may be stored)
            indices  int32[nnz]             (input unit of each stored weight, sorted within a row)
            indptr   int64[out+1]
        bias         float[out]
        unit_names   str[out]               (optional)

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from modgraph.network import Layer, LayeredNetwork
>>> net = LayeredNetwork([Layer.from_dense(np.eye(3), activation="tanh")], metadata={"seed": 3})
>>> path = pathlib.Path(tempfile.mkdtemp()) / "net.h5"
>>> save(net, path)
>>> back = read_hdf5(path)
>>> back.metadata, back.layers[0].activation, back.summary()["n_edges"]
({'seed': 3}, 'tanh', 3)
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from modgraph.dag import DagNetwork
from modgraph.errors import FormatError
from modgraph.io.atomic import atomic_path
from modgraph.io.hdf5_dag import DAG_FORMAT_VERSION, read_dag, write_dag
from modgraph.io.limits import SizeGuard
from modgraph.io.registry import HDF5_MAGIC, Reader, has_hdf5_magic, register_reader
from modgraph.network import ACTIVATIONS, Layer, LayeredNetwork

__all__ = ["save", "read_hdf5", "FORMAT_TAG", "FORMAT_VERSION"]

FORMAT_TAG = "modgraph"
FORMAT_VERSION = "1.0"
_STR = h5py.string_dtype("utf-8")


def save(network: LayeredNetwork | DagNetwork, path, *, metadata: dict | None = None) -> None:
    """Write ``network`` to ``path`` in the modgraph HDF5 format, atomically.

    ``metadata`` (JSON-serialisable) is merged over ``network.metadata``. A LayeredNetwork, or a
    DagNetwork that is a chain, is written as version 1.0; any other DagNetwork as version 2.0
    (``modgraph.io.hdf5_dag``).
    """
    dag = None
    if isinstance(network, DagNetwork):
        dag, network = (None, network.to_layered()) if network.is_chain else (network, network)
    meta = network.metadata
    meta.update(metadata or {})
    try:
        meta_json = json.dumps(meta, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise FormatError(path, "metadata", "JSON-serialisable values", str(err)) from err
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            if dag is None:
                _write(f, network, meta_json)
            else:
                write_dag(f, dag, meta_json)


def _write(f: h5py.File, network: LayeredNetwork, meta_json: str) -> None:
    f.attrs.update(format=FORMAT_TAG, format_version=FORMAT_VERSION, weight_orientation="out_in",
                   n_layers=len(network), layer_sizes=np.asarray(network.widths, np.int64),
                   metadata_json=meta_json)
    if network.input_names is not None:
        f.create_dataset("input_names", data=list(network.input_names), dtype=_STR)
    layers = f.create_group("layers")
    for i, layer in enumerate(network.layers):
        g = layers.create_group(f"{i:03d}")
        g.attrs.update(kind=layer.kind, activation=layer.activation, alpha=float(layer.alpha),
                       in_features=layer.n_in, out_features=layer.n_out, nnz=layer.n_edges)
        w = g.create_group("weight")
        w.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                        "shape": np.asarray(layer.weight.shape, np.int64)})
        w.create_dataset("data", data=layer.weight.data)
        w.create_dataset("indices", data=layer.weight.indices.astype(np.int32))
        w.create_dataset("indptr", data=layer.weight.indptr.astype(np.int64))
        g.create_dataset("bias", data=layer.bias)
        if layer.unit_names is not None:
            g.create_dataset("unit_names", data=list(layer.unit_names), dtype=_STR)


# -- reading ----------------------------------------------------------------------------------------
class _Ctx:
    """Reads from an open file, turning every surprise into a FormatError naming the place."""

    def __init__(self, f: h5py.File, path: Path):
        self.f, self.path = f, path
        self.guard = SizeGuard(path)

    def fail(self, place, expected, found):
        return FormatError(self.path, place, expected, found)

    def attr(self, obj, name, place):
        if name not in obj.attrs:
            raise self.fail(f"{place} attribute {name!r}", "present", "missing")
        v = obj.attrs[name]
        return v.decode() if isinstance(v, bytes) else v

    def dataset(self, group, name, *, kind=None, ndim=1):
        place = f"{group.name.rstrip('/')}/{name}"
        obj = group.get(name)
        if not isinstance(obj, h5py.Dataset):
            raise self.fail(place, "a dataset", "missing" if obj is None else "a group")
        if obj.ndim != ndim:
            raise self.fail(place, f"{ndim}-D data", f"shape {obj.shape}")
        if kind and obj.dtype.kind not in kind:
            raise self.fail(place, {"f": "floating point", "iu": "integers", "O": "strings"}.get(kind, kind)
                            + " values", f"dtype {obj.dtype}")
        self.guard.hdf5(obj, place)                 # declared size vs stored bytes, before reading
        try:
            return obj[()] if kind != "O" else [s.decode() if isinstance(s, bytes) else str(s) for s in obj[()]]
        except (OSError, ValueError) as err:
            raise self.fail(place, "readable data", f"a read error ({err})") from err


_DAMAGE = (OSError, KeyError, RuntimeError, ValueError, TypeError, OverflowError)


def read_hdf5_file(path, read, *, expected: str, errors=_DAMAGE):
    """Open ``path`` with h5py and return ``read(file, path)``; an unreadable file or damaged
    inner objects (``errors``: what h5py and numpy raise on them, e.g. a NaN where an integer
    belongs) become a :class:`FormatError` (``expected`` names what was wanted)."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as err:
        raise FormatError(path, "HDF5 superblock", "a complete, readable HDF5 file",
                          f"an unreadable file ({err})") from err
    with f:
        try:
            return read(f, path)
        except FormatError:
            raise
        except errors as err:                                 # truncated or damaged inner objects
            raise FormatError(path, "HDF5 object tree", expected, f"damage ({type(err).__name__}: {err})") from err


def read_hdf5(path) -> LayeredNetwork | DagNetwork:
    """Read a modgraph HDF5 file; every defect raises a :class:`FormatError`.

    Version 1 files give a LayeredNetwork, version 2 files a DagNetwork. Read in a child process
    unless isolation is off (:mod:`modgraph.io.isolate`)."""
    return isolated(path, lambda: read_hdf5_file(path, lambda f, p: _read(_Ctx(f, p)), expected="readable HDF5 objects"))


def isolated(path, read):
    """``read()`` in a forked child under the time limit when isolation is on, else in-process."""
    from modgraph.io.isolate import isolation_wanted, run_isolated

    return run_isolated(path, read) if isolation_wanted() else read()


def _read(c: _Ctx) -> LayeredNetwork | DagNetwork:
    f = c.f
    tag = c.attr(f, "format", "/")
    if tag != FORMAT_TAG:
        raise c.fail("/ attribute 'format'", repr(FORMAT_TAG), repr(tag))
    version = str(c.attr(f, "format_version", "/"))
    major = version.split(".")[0]
    if major == DAG_FORMAT_VERSION.split(".")[0]:
        return read_dag(f, c.path)
    if major != FORMAT_VERSION.split(".")[0] or not major.isdigit():
        raise c.fail("/ attribute 'format_version'", f"version {FORMAT_VERSION.split('.')[0]}.x or "
                     f"{DAG_FORMAT_VERSION.split('.')[0]}.x (this modgraph reads no other)", repr(version))
    try:
        metadata = json.loads(c.attr(f, "metadata_json", "/"))
    except json.JSONDecodeError as err:
        raise c.fail("/ attribute 'metadata_json'", "a JSON document", f"invalid JSON ({err})") from err
    group = f.get("layers")
    if not isinstance(group, h5py.Group) or not len(group):
        raise c.fail("/layers", "a group of layers 000, 001, ...", "missing or empty")
    names = sorted(group)
    expected = [f"{i:03d}" for i in range(len(names))]
    if names != expected:
        raise c.fail("/layers", "layers named " + ", ".join(expected), ", ".join(names))
    layers = []
    for name in names:
        layers.append(_read_layer(c, group[name], layers[-1].n_out if layers else None))
    input_names = c.dataset(f, "input_names", kind="O") if "input_names" in f else None
    if input_names is not None and len(input_names) != layers[0].n_in:
        raise c.fail("/input_names", f"{layers[0].n_in} names", f"{len(input_names)}")
    _check_sizes(c, layers)
    return LayeredNetwork(layers, input_names=input_names, metadata=metadata, source=str(c.path),
                          source_format="modgraph-hdf5")


def _check_sizes(c: _Ctx, layers: list) -> None:
    """The root ``n_layers`` and ``layer_sizes`` attributes, when present, must describe the layers read."""
    widths = [layers[0].n_in] + [layer.n_out for layer in layers]
    if "n_layers" in c.f.attrs:
        n = np.asarray(c.f.attrs["n_layers"])
        if n.shape != () or n.dtype.kind not in "iu" or int(n) != len(layers):
            raise c.fail("/ attribute 'n_layers'", f"{len(layers)} (the layers in /layers)", repr(n.tolist()))
    if "layer_sizes" in c.f.attrs:
        sizes = np.asarray(c.f.attrs["layer_sizes"])
        if sizes.dtype.kind not in "iu" or sizes.ndim != 1 or sizes.tolist() != widths:
            found = repr(sizes.tolist())
            raise c.fail("/ attribute 'layer_sizes'", f"{widths} (the widths of the layers in /layers)",
                         found if len(found) <= 200 else found[:200] + " ...")


def _read_layer(c: _Ctx, g: h5py.Group, n_prev: int | None) -> Layer:
    place = g.name
    activation = str(c.attr(g, "activation", place))
    if activation not in ACTIVATIONS:
        raise c.fail(f"{place} attribute 'activation'", "one of " + ", ".join(sorted(ACTIVATIONS)),
                     repr(activation))
    w = g.get("weight")
    if not isinstance(w, h5py.Group):
        raise c.fail(f"{place}/weight", "a CSR group (data, indices, indptr)", "missing")
    raw_shape = np.asarray(c.attr(w, "shape", w.name))
    if raw_shape.dtype.kind not in "iu" or raw_shape.shape != (2,):
        raise c.fail(f"{w.name} attribute 'shape'", "[n_out, n_in]: two integers", repr(raw_shape.tolist())[:80])
    shape = tuple(int(s) for s in raw_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise c.fail(f"{w.name} attribute 'shape'", "[n_out, n_in] with both ≥ 1", str(list(shape)))
    if n_prev is not None and shape[1] != n_prev:
        raise c.fail(f"{w.name} attribute 'shape'", f"{n_prev} inputs (the outputs of the previous layer)",
                     f"{shape[1]}")
    data = c.dataset(w, "data", kind="f")
    c.guard.units(f"{w.name} attribute 'shape'", shape, data.size)      # a CSR costs memory per unit too
    indices = c.dataset(w, "indices", kind="iu")
    indptr = c.dataset(w, "indptr", kind="iu")
    weight = _check_csr(c, w.name, shape, data, indices, indptr)
    with np.errstate(over="ignore", invalid="ignore"):                 # the sum is the cheap first test
        suspect = not np.isfinite(data.sum())
    if suspect and not np.isfinite(data).all():
        raise c.fail(f"{w.name}/data", "finite weights", f"{int((~np.isfinite(data)).sum())} NaN/Inf value(s)")
    bias = c.dataset(g, "bias", kind="f")
    if bias.shape != (shape[0],):
        raise c.fail(f"{place}/bias", f"{shape[0]} values", f"{bias.shape[0]}")
    if not np.isfinite(bias).all():
        raise c.fail(f"{place}/bias", "finite values", f"{int((~np.isfinite(bias)).sum())} NaN/Inf value(s)")
    unit_names = c.dataset(g, "unit_names", kind="O") if "unit_names" in g else None
    if unit_names is not None and len(unit_names) != shape[0]:
        raise c.fail(f"{place}/unit_names", f"{shape[0]} names", f"{len(unit_names)}")
    return Layer(weight, bias, activation=activation, alpha=float(g.attrs.get("alpha", 0.01)),
                 unit_names=unit_names, copy=False)      # the arrays were just read for this layer


def _check_csr(c: _Ctx, place, shape, data, indices, indptr) -> sp.csr_matrix:
    """Validate the CSR arrays without nnz-sized temporaries; return the matrix (no copy)."""
    n_out, n_in = shape
    if indptr.shape != (n_out + 1,):
        raise c.fail(f"{place}/indptr", f"{n_out + 1} entries (n_out + 1)", f"{indptr.shape[0]}")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise c.fail(f"{place}/indptr", "a non-decreasing sequence starting at 0", "another sequence")
    if indptr[-1] != data.size or indices.size != data.size:
        raise c.fail(place, "indptr[-1] == len(indices) == len(data)",
                     f"{int(indptr[-1])}, {indices.size}, {data.size}")
    if indices.size and (indices.min() < 0 or indices.max() >= n_in):
        raise c.fail(f"{place}/indices", f"column indices in [0, {n_in})",
                     f"values from {int(indices.min())} to {int(indices.max())}")
    weight = sp.csr_matrix((data, indices.astype(np.int32, copy=False), indptr.astype(np.int64, copy=False)),
                           shape=shape, copy=False)
    if not weight.has_canonical_format:          # sorted, distinct columns within each row (one C pass)
        raise c.fail(f"{place}/indices", "strictly increasing columns within each row", "repeats or disorder")
    return weight


def _sniff(path: Path, head: bytes) -> bool:
    if not head.startswith(HDF5_MAGIC):
        return False
    try:
        with h5py.File(path, "r") as f:
            return "format" in f.attrs
    except Exception:       # a damaged HDF5 file: let read_hdf5 explain it if nothing else owns it
        return True


register_reader(Reader("modgraph-hdf5", "modgraph's sparse HDF5 format", _sniff, read_hdf5, native=has_hdf5_magic))
