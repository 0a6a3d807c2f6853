"""The constants of an ONNX graph, turned into arrays only when used, with hostile-input guards.

Sources (ecosystem facts §1.4 rule 1): ``graph.initializer``, ``graph.sparse_initializer``,
``Constant`` nodes (``value``, ``sparse_value``, ``value_float(s)``) and ``Identity`` nodes of a
constant. Guards: a tensor's claimed size must equal the data really stored (a dimension
claiming 10^12 elements is refused before anything is allocated); external data must sit
inside the model's folder (``../`` and absolute locations are refused, never opened) and
inside the data file; a sparse tensor may not claim far more units than it stores; every
tensor is claimed against the ceilings of :mod:`modgraph.io.limits` before it is allocated.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from onnx import AttributeProto, TensorProto, helper

from modgraph.errors import FormatError
from modgraph.io._memory import new_array
from modgraph.io.limits import SizeGuard

__all__ = ["Constants"]

_DTYPES = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.FLOAT16: np.float16,
           TensorProto.INT64: np.int64, TensorProto.INT32: np.int32, TensorProto.INT8: np.int8,
           TensorProto.UINT8: np.uint8, TensorProto.BOOL: np.bool_}
_FIELDS = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data", TensorProto.INT64: "int64_data"}
_DENSE_FREE = 4096          # a sparse constant used densely: at most 16 * nnz + 4096 entries


#: numpy's limit on an array's dimensions (numpy 1.x)
_MAX_DIMS = 32


class Constants:
    """Name -> constant of one ONNX graph; ``array``/``matrix`` convert it when asked."""

    def __init__(self, graph, path: Path, raw_ranges: dict | None = None):
        self.path, self.folder = path, path.parent
        self.guard = SizeGuard(path)              # every tensor is claimed before it is allocated
        ranges = raw_ranges or {}                  # raw_data cut out by the skeleton reader: read from the file
        # name -> (kind, proto, byte range in the file or None). Protobuf wrappers are never keyed by
        # id(): upb creates them on access, so an id can be reused by another message.
        self._proto: dict[str, tuple] = {}
        for t in graph.initializer:
            if t.name in self._proto:
                raise self.fail(f"initializer {t.name!r}", "unique initializer names", "a second one")
            self._proto[t.name] = ("tensor", t, None if t.HasField("raw_data") else ranges.get(t.name))
        self._proto.update({s.values.name: ("sparse", s, None) for s in graph.sparse_initializer})
        self.producers: set[int] = set()           # indices of nodes that only compute constants
        nodes = list(graph.node)
        for i, node in enumerate(nodes):
            if node.op_type == "Constant" and len(node.output) == 1:
                self._proto[node.output[0]] = ("node", node, None)
                self.producers.add(i)
        changed = True
        while changed:                             # Identity(constant) chains, as legacy torch de-duplicates
            changed = False
            for i, node in enumerate(nodes):
                if (node.op_type == "Identity" and i not in self.producers and len(node.input) == 1
                        and node.input[0] in self._proto and len(node.output) == 1):
                    self._proto[node.output[0]] = self._proto[node.input[0]]
                    self.producers.add(i)
                    changed = True

    def __contains__(self, name: str) -> bool:
        return name in self._proto

    def stored_bytes(self) -> int:
        """An upper bound on the bytes of values the graph really stores (each at least one byte):
        serialized sizes, cut-out raw ranges and external data files as they are on disk. No
        declared dimension counts, so a forged shape cannot raise it."""
        total, seen = 0, set()
        for kind, proto, byte_range in self._proto.values():
            if kind == "tensor" and proto.external_data:
                location = {e.key: e.value for e in proto.external_data}.get("location", "")
                target = self.folder / location
                if location and target not in seen and target.is_file():
                    seen.add(target)
                    total += target.stat().st_size
            else:                                  # the raw range (offset, length) was cut out of the proto
                total += proto.ByteSize() + (int(byte_range[1]) if byte_range is not None else 0)
        return total

    def fail(self, place, expected, found):
        return FormatError(self.path, place, expected, found)

    def array(self, name: str, place: str) -> np.ndarray:
        """The constant as a dense float64-or-native ndarray (a sparse one only when it is small)."""
        value = self._get(name, place)
        if sp.issparse(value):
            if value.shape[0] * value.shape[1] > 16 * value.nnz + _DENSE_FREE:
                raise self.fail(place, "a dense constant (sparse only for weight matrices)",
                                f"a sparse tensor of shape {value.shape}")
            return value.toarray()
        return value

    def matrix(self, name: str, place: str):
        """A 2-D constant as a dense ndarray or (for sparse tensors) a CSR matrix."""
        value = self._get(name, place)
        if value.ndim != 2:
            raise self.fail(place, "a 2-D weight matrix", f"shape {tuple(value.shape)}")
        return value

    def _get(self, name: str, place: str):
        """Convert on every use (no cache: a weight is used once, and keeping arrays would hold
        a second copy of every weight until the whole model is read)."""
        kind, proto, byte_range = self._proto[name]
        if kind == "tensor":
            return self._dense(proto, place, byte_range)
        if kind == "sparse":
            return self._sparse(proto, place)
        return self._constant_node(proto, place)

    # -- Constant nodes -----------------------------------------------------------------------
    def _constant_node(self, node, place):
        attr = node.attribute[0] if len(node.attribute) == 1 else None
        if attr is None:
            raise self.fail(place, "a Constant node with exactly one value attribute",
                            f"{len(node.attribute)} attributes")
        if attr.type == AttributeProto.TENSOR:
            return self._dense(attr.t, place)
        if attr.type == AttributeProto.SPARSE_TENSOR:
            return self._sparse(attr.sparse_tensor, place)
        if attr.type in (AttributeProto.FLOAT, AttributeProto.FLOATS, AttributeProto.INT, AttributeProto.INTS):
            return np.asarray(helper.get_attribute_value(attr))
        raise self.fail(place, "a Constant with a tensor, sparse tensor or number value",
                        f"attribute {attr.name!r}")

    # -- dense tensors --------------------------------------------------------------------------
    def _dense(self, t: TensorProto, place: str, byte_range=None) -> np.ndarray:
        dtype = _DTYPES.get(t.data_type)
        if dtype is None:
            known = t.data_type in TensorProto.DataType.values()
            names = ", ".join(TensorProto.DataType.Name(k) for k in _DTYPES)
            raise self.fail(place, f"a numeric tensor ({names})",
                            f"data type {TensorProto.DataType.Name(t.data_type) if known else t.data_type}")
        dims = tuple(int(d) for d in t.dims)
        if any(d < 0 for d in dims) or len(dims) > _MAX_DIMS:
            raise self.fail(place, f"at most {_MAX_DIMS} non-negative dimensions", str(list(dims)))
        n = math.prod(dims)
        if t.data_location == TensorProto.EXTERNAL:
            flat = self._external(t, dtype, n, place)
        elif byte_range is not None:
            offset, length = byte_range
            itemsize = np.dtype(dtype).itemsize
            self._check_count(place, dims, n, length // itemsize, length % itemsize)
            self.guard.claim(place, dims, dtype, None)
            flat = self._read_at(self.path, offset, n, dtype, place)
        elif t.HasField("raw_data"):
            raw = t.raw_data
            self._check_count(place, dims, n, len(raw) // np.dtype(dtype).itemsize, len(raw) % np.dtype(dtype).itemsize)
            self.guard.claim(place, dims, dtype, None)
            flat = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype, copy=False)
        else:
            field = _FIELDS.get(t.data_type, "int32_data")
            stored = getattr(t, field)
            self._check_count(place, dims, n, len(stored), 0)
            self.guard.claim(place, dims, dtype, None)
            if t.data_type == TensorProto.FLOAT16:
                flat = np.asarray(stored, dtype=np.uint16).view(np.float16)
            else:
                flat = np.asarray(stored, dtype=dtype)
        return flat.reshape(dims)

    def _check_count(self, place, dims, n, stored, remainder):
        if stored != n or remainder:
            raise self.fail(place, f"{n} stored elements (dims {list(dims)})",
                            f"{stored} element(s)" + (f" and {remainder} stray byte(s)" if remainder else ""))

    def _external(self, t: TensorProto, dtype, n: int, place: str) -> np.ndarray:
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        target = self._inside_folder(location, place)
        itemsize = np.dtype(dtype).itemsize
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except ValueError as err:
            raise self.fail(f"{place} external_data", "integer offset and length", str(info)) from err
        size = target.stat().st_size
        if length is None:
            length = size - offset
        if offset < 0 or length != n * itemsize or offset + length > size:
            raise self.fail(f"{place} external_data {location!r}",
                            f"{n * itemsize} bytes inside the {size}-byte data file",
                            f"offset {offset}, length {length}")
        self.guard.claim(place, (n,), dtype, None)
        return self._read_at(target, offset, n, dtype, place)

    def _read_at(self, file: Path, offset: int, n: int, dtype, place: str) -> np.ndarray:
        """``n`` little-endian values at ``offset``, read straight into a new array (one syscall
        for the bulk; np.fromfile is several times slower here)."""
        out = new_array(n, np.dtype(dtype).newbyteorder("<"))
        view = memoryview(out).cast("B")
        with open(file, "rb", buffering=0) as fh:
            fh.seek(offset)
            done = 0
            while done < view.nbytes:
                got = fh.readinto(view[done:])
                if not got:
                    raise self.fail(place, f"{view.nbytes} bytes at offset {offset} of {file.name}",
                                    f"the file ends after {done}")
                done += got
        return out.astype(dtype, copy=False)

    def _inside_folder(self, location: str, place: str) -> Path:
        where = f"{place} external_data location"
        if not location or os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location:
            raise self.fail(where, "a relative path inside the model's folder", repr(location))
        folder = self.folder.resolve()
        target = (folder / location).resolve()
        if folder not in target.parents:
            raise self.fail(where, "a relative path inside the model's folder",
                            f"{location!r}, which escapes it (refused, not read)")
        if not target.is_file():
            raise self.fail(where, "an existing data file beside the model", f"{location!r} missing")
        return target

    # -- sparse tensors -------------------------------------------------------------------------
    def _sparse(self, s, place: str):
        dims = tuple(int(d) for d in s.dims)
        values = self._dense(s.values, f"{place} values")
        indices = self._dense(s.indices, f"{place} indices")
        nnz = values.size
        if len(dims) not in (1, 2) or any(d < 1 for d in dims):
            raise self.fail(place, "a sparse matrix or vector with positive dimensions", f"dims {list(dims)}")
        self.guard.units(place, dims, nnz)          # a CSR costs memory per row (and the graph per unit)
        if values.ndim != 1 or indices.dtype.kind not in "iu":
            raise self.fail(place, "1-D values and integer indices", f"values {values.shape}, {indices.dtype}")
        if indices.shape == (nnz, len(dims)):
            coords = [indices[:, k].astype(np.int64) for k in range(len(dims))]
        elif indices.shape == (nnz,):
            coords = list(np.unravel_index(indices.astype(np.int64), dims)) if (
                nnz == 0 or (indices.min() >= 0 and indices.max() < math.prod(dims))) else None
        else:
            coords = None
        if coords is None or any(nnz and (c.min() < 0 or c.max() >= d) for c, d in zip(coords, dims)):
            raise self.fail(f"{place} indices", f"{nnz} in-range indices for dims {list(dims)}",
                            f"shape {indices.shape} or out-of-range values")
        if len(dims) == 1:
            dense = np.zeros(dims, values.dtype)
            dense[coords[0]] = values
            return dense
        values = values.astype(np.result_type(values.dtype, np.float32), copy=False)    # scipy has no float16
        m = sp.csr_matrix((values, (coords[0], coords[1])), shape=dims)
        if m.nnz != nnz:
            raise self.fail(f"{place} indices", "distinct positions", f"{nnz - m.nnz} repeated position(s)")
        return m
