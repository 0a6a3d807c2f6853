"""The size guard every reader uses: a declared size is checked before anything is allocated.

Each array a reader is about to materialise is *claimed* first: its declared shape × dtype
must be backed by the bytes really stored in the file (an HDF5 dataset's allocated storage,
an ONNX tensor's raw data or external data, a zip member's stored bytes), compressed data
may not unpack to more than ``max_ratio`` times its stored size, and no array (nor all the
arrays of one file together) may exceed the ceiling. Anything else raises a
:class:`~modgraph.errors.FormatError` naming the file, the dataset or tensor, what was
declared and what is stored — before the allocation, so a 9 KB file that declares a
30000×30000 kernel costs nothing.

The ceilings come from :class:`Limits`: by default from the environment
(``MODGRAPH_MAX_ARRAY_BYTES``, ``MODGRAPH_MAX_LOAD_BYTES``, ``MODGRAPH_MAX_COMPRESSION_RATIO``),
or for one block of code ``with using_limits(Limits(max_array_bytes=...)):``, or per call
``modgraph.io.load(path, limits=...)``.

The same :class:`Limits` say how a read through libhdf5 is isolated (:mod:`modgraph.io.isolate`):
``isolate`` (``MODGRAPH_ISOLATE=0`` turns it off) and the time limit ``read_timeout_s`` +
``read_timeout_per_gb`` × the file's size in GB (``MODGRAPH_READ_TIMEOUT``,
``MODGRAPH_READ_TIMEOUT_PER_GB``).

Examples
--------
>>> guard = SizeGuard("w.h5", Limits(max_array_bytes=1000))
>>> guard.claim("/kernel", (10, 10), "float32", stored_bytes=400)
400
>>> guard.claim("/big", (30000, 30000), "float32", stored_bytes=9000)
Traceback (most recent call last):
...
modgraph.errors.FormatError: w.h5: /big: expected stored data backing its (30000, 30000) shape, found 9000 stored bytes (declared: 900000000 float32 values = 3.6 GB)
"""
from __future__ import annotations

import math
import os
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

import numpy as np

from modgraph.errors import FormatError

__all__ = ["Limits", "SizeGuard", "using_limits", "current_limits", "ENV_MAX_ARRAY_BYTES",
           "ENV_MAX_LOAD_BYTES", "ENV_MAX_COMPRESSION_RATIO", "ENV_ISOLATE", "ENV_READ_TIMEOUT",
           "ENV_READ_TIMEOUT_PER_GB"]

ENV_MAX_ARRAY_BYTES = "MODGRAPH_MAX_ARRAY_BYTES"
ENV_MAX_LOAD_BYTES = "MODGRAPH_MAX_LOAD_BYTES"
ENV_MAX_COMPRESSION_RATIO = "MODGRAPH_MAX_COMPRESSION_RATIO"
ENV_ISOLATE = "MODGRAPH_ISOLATE"
ENV_READ_TIMEOUT = "MODGRAPH_READ_TIMEOUT"
ENV_READ_TIMEOUT_PER_GB = "MODGRAPH_READ_TIMEOUT_PER_GB"
_DEFLATE_MAX_RATIO = 1100


@dataclass(frozen=True)
class Limits:
    """Ceilings for one load.

    Attributes
    ----------
    max_array_bytes : int
        Largest single array a reader may allocate (default 4 GiB).
    max_load_bytes : int
        Largest total of all arrays claimed while reading one file (default 16 GiB).
    max_ratio : float
        Largest unpacked/stored ratio of compressed data (HDF5 filters, deflated zip
        members; default 200); data below ``free_bytes`` is not ratio-checked.
    free_bytes : int
        Arrays this small may be compressed at any ratio or left unwritten (1 MiB).
    units_per_value, free_units : int
        A sparse weight may declare at most ``units_per_value * stored values + free_units``
        units (rows + columns): a sparse matrix costs memory per unit too (default 64, 2**20).
    isolate : bool
        Read files that go through libhdf5 (modgraph HDF5, Keras ``.h5`` and ``.keras``) in a forked
        child process, so that a hang or crash inside the C library becomes a
        :class:`~modgraph.errors.FormatError` (default True; ``MODGRAPH_ISOLATE=0`` turns it off).
    read_timeout_s, read_timeout_per_gb : float
        The isolated read's time limit: ``read_timeout_s + read_timeout_per_gb * file size in GB``
        (default 3 s + 60 s per GB; ``MODGRAPH_READ_TIMEOUT``, ``MODGRAPH_READ_TIMEOUT_PER_GB``).
    """

    max_array_bytes: int = 4 * 2**30
    max_load_bytes: int = 16 * 2**30
    max_ratio: float = 200.0
    free_bytes: int = 2**20
    units_per_value: int = 64
    free_units: int = 2**20
    isolate: bool = True
    read_timeout_s: float = 3.0
    read_timeout_per_gb: float = 60.0

    def read_timeout(self, n_bytes: int) -> float:
        """The time limit of an isolated read of a file of ``n_bytes``."""
        return self.read_timeout_s + self.read_timeout_per_gb * n_bytes / 1e9

    @classmethod
    def from_env(cls, environ=None) -> "Limits":
        """Defaults, overridden by ``MODGRAPH_MAX_ARRAY_BYTES``, ``MODGRAPH_MAX_LOAD_BYTES``,
        ``MODGRAPH_MAX_COMPRESSION_RATIO``, ``MODGRAPH_READ_TIMEOUT``, ``MODGRAPH_READ_TIMEOUT_PER_GB``
        and ``MODGRAPH_ISOLATE`` (``0`` or ``1``) when set (a bad value raises ``ValueError``)."""
        environ = os.environ if environ is None else environ
        values = {}
        raw = environ.get(ENV_ISOLATE)
        if raw is not None and raw.strip():
            if raw.strip() not in ("0", "1"):
                raise ValueError(f"{ENV_ISOLATE}={raw!r}: expected 0 (read in-process) or 1 (isolated reads)")
            values["isolate"] = raw.strip() == "1"
        for field, var, kind in (("max_array_bytes", ENV_MAX_ARRAY_BYTES, int),
                                 ("max_load_bytes", ENV_MAX_LOAD_BYTES, int),
                                 ("max_ratio", ENV_MAX_COMPRESSION_RATIO, float),
                                 ("read_timeout_s", ENV_READ_TIMEOUT, float),
                                 ("read_timeout_per_gb", ENV_READ_TIMEOUT_PER_GB, float)):
            raw = environ.get(var)
            if raw is None or not raw.strip():
                continue
            try:
                value = kind(raw.strip())
            except ValueError:
                value = None
            if value is None or not value > 0 or (kind is float and not math.isfinite(value)):
                raise ValueError(f"{var}={raw!r}: expected a positive {'integer' if kind is int else 'number'}")
            values[field] = value
        return cls(**values)


_ACTIVE: ContextVar[Limits | None] = ContextVar("modgraph_limits", default=None)


def current_limits() -> Limits:
    """The limits in force: those of the innermost :func:`using_limits`, else :meth:`Limits.from_env`."""
    active = _ACTIVE.get()
    return active if active is not None else Limits.from_env()


@contextmanager
def using_limits(limits: Limits | None):
    """Make ``limits`` the limits of every read inside the block (``None``: leave them as they are)."""
    if limits is None:
        yield current_limits()
        return
    token = _ACTIVE.set(limits)
    try:
        yield limits
    finally:
        _ACTIVE.reset(token)


def _human(n: int) -> str:
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _file_bytes(f) -> int:
    """The bytes an open h5py file really has: its size on disk (libhdf5's own figure is the end of
    allocation the superblock declares, which a damaged file can put anywhere)."""
    name = f.filename
    if isinstance(name, str) and os.path.isfile(name):
        return os.path.getsize(name)
    return f.id.get_filesize()             # a file object (a .keras member): bounded by its declared size


class SizeGuard:
    """The claims of one read of ``path``: every array is claimed before it is allocated."""

    def __init__(self, path, limits: Limits | None = None):
        self.path = path
        self.limits = limits if limits is not None else current_limits()
        self.total = 0

    def fail(self, place, expected, found):
        return FormatError(self.path, place, expected, found)

    def claim(self, place: str, shape, dtype, stored_bytes: int | None, *, compressed: bool = False,
              stored_itemsize: int | None = None) -> int:
        """Check an array of ``shape`` × ``dtype`` against its ``stored_bytes`` and the ceilings;
        return its size in bytes. ``stored_bytes=None`` means the caller already checked the
        stored size exactly (only the ceilings are checked); ``stored_itemsize`` is the element
        size in the file when it differs from the in-memory one."""
        lim = self.limits
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise self.fail(place, "non-negative dimensions", str(list(shape)))
        n = math.prod(shape)
        dtype = np.dtype(dtype)
        nbytes = n * dtype.itemsize
        declared = f"declared: {n} {dtype} values = {_human(nbytes)}"
        if stored_bytes is not None and nbytes > lim.free_bytes:
            need = n * (stored_itemsize or dtype.itemsize)
            if compressed and need > stored_bytes * lim.max_ratio:
                raise self.fail(place, f"compressed data unpacking to at most {lim.max_ratio:g}x its stored size "
                                f"({ENV_MAX_COMPRESSION_RATIO})",
                                f"{stored_bytes} stored bytes for its {shape} shape ({declared}, "
                                f"{need / max(stored_bytes, 1):.0f}x)")
            if not compressed and stored_bytes < need:
                raise self.fail(place, f"stored data backing its {shape} shape",
                                f"{stored_bytes} stored bytes ({declared})")
        if nbytes > lim.max_array_bytes:
            raise self.fail(place, f"an array of at most {lim.max_array_bytes} bytes ({ENV_MAX_ARRAY_BYTES})",
                            f"shape {shape} ({declared})")
        self.total += nbytes
        if self.total > lim.max_load_bytes:
            raise self.fail(place, f"at most {lim.max_load_bytes} bytes of arrays in one file ({ENV_MAX_LOAD_BYTES})",
                            f"{self.total} bytes claimed so far ({declared} here)")
        return nbytes

    def units(self, place: str, dims, stored_values: int) -> None:
        """A sparse weight's rows + columns must be in proportion to its stored values."""
        lim = self.limits
        if sum(int(d) for d in dims) > lim.units_per_value * stored_values + lim.free_units:
            raise self.fail(place, f"at most {lim.units_per_value} units per stored value for its {stored_values} values",
                            f"dims {[int(d) for d in dims]} (beyond the {lim.free_units} units allowed free)")

    def unit_budget(self, stored_values: int) -> int:
        """The channel entries a network built from ``stored_values`` stored values (readers pass the
        bytes the file really stores, an upper bound on its values) may declare."""
        return self.limits.units_per_value * int(stored_values) + self.limits.free_units

    def hdf5(self, ds, place: str | None = None) -> int:
        """Claim an h5py dataset: refuse virtual and external storage (never read), check its
        chunk size and its allocated storage (filtered chunks at their stored size)."""
        place = place or ds.name
        if ds.is_virtual:
            raise self.fail(place, "data stored in this file", "a virtual dataset mapping other files (not read)")
        if ds.external:
            names = sorted({str(e[0]) for e in ds.external})
            raise self.fail(place, "data stored in this file",
                            f"external raw data in {', '.join(map(repr, names))[:200]} (not read)")
        shape = ds.shape if ds.shape is not None else ()
        dtype = ds.dtype
        file_itemsize = ds.id.get_type().get_size()
        plist = ds.id.get_create_plist()
        compressed = plist.get_nfilters() > 0
        stored, file_bytes = ds.id.get_storage_size(), _file_bytes(ds.file)
        offset = ds.id.get_offset() if ds.chunks is None else None
        if stored > file_bytes or (offset is not None and offset + stored > file_bytes):
            raise self.fail(place, f"stored data inside the {file_bytes}-byte file",
                            f"{stored} bytes of storage" + (f" at offset {offset}" if offset is not None else ""))
        if ds.chunks is not None:
            chunk = math.prod(ds.chunks) * file_itemsize
            n_bytes = math.prod(shape) * file_itemsize
            if chunk > max(n_bytes, self.limits.free_bytes) and chunk > 16 * 2**20:
                raise self.fail(place, f"chunks no larger than the {n_bytes}-byte dataset",
                                f"chunks {ds.chunks} of {chunk} bytes")
        return self.claim(place, shape, dtype if dtype.kind != "O" else np.dtype(object), ds.id.get_storage_size(),
                          compressed=compressed, stored_itemsize=file_itemsize)

    def zip_member(self, info, place: str, *, max_bytes: int | None = None, count: bool = True) -> int:
        """Claim a zip member before it is read: its unpacked size against its stored size
        (deflated members at most ``max_ratio`` times) and the ceilings; ``count=False`` for a
        member that is streamed, not held (its arrays are claimed one by one)."""
        if info.compress_type == 0 and info.file_size != info.compress_size:
            raise self.fail(place, "a stored member whose size equals its stored bytes",
                            f"{info.file_size} bytes declared, {info.compress_size} stored")
        limit = max_bytes if max_bytes is not None else self.limits.max_array_bytes
        if info.file_size > limit:
            raise self.fail(place, f"at most {limit} bytes once unpacked",
                            f"{info.file_size} bytes from {info.compress_size} stored")
        total, limits = self.total, self.limits
        if not count:         # streamed: unpacking costs time, not memory; allow deflate's own maximum (~1032:1)
            self.limits = replace(limits, max_ratio=max(limits.max_ratio, _DEFLATE_MAX_RATIO))
        try:
            nbytes = self.claim(place, (info.file_size,), np.uint8, info.compress_size,
                                compressed=info.compress_type != 0)
        finally:
            self.limits = limits
        if not count:
            self.total = total
        return nbytes
