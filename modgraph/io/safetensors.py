"""safetensors files (``.safetensors``), read with a header parser of our own (no torch, no package).

Layout: an 8-byte little-endian u64 ``N``, ``N`` bytes of UTF-8 JSON ``{"name": {"dtype", "shape",
"data_offsets": [begin, end]}, "__metadata__": {str: str}}`` (may be padded with spaces), then the
byte buffer (little-endian, C order). Everything declared is checked before any tensor is
allocated: ``N`` at most 100,000,000 and inside the file; every entry's dtype known, shape a list
of non-negative ints, ``end - begin`` = prod(shape) x itemsize; the spans, sorted, start at 0,
follow each other without holes or overlaps and end exactly at the end of the file. ``BF16`` is
read as ``<u2`` and shifted left 16 bits into float32; ``F16`` is upcast to float32. A
safetensors file carries no topology: the tensors are read as a chain of Linear/Conv layers by
:func:`modgraph.io.state_chain.network_from_tensors`, which says what it assumed.

Examples
--------
>>> import json, pathlib, struct, tempfile
>>> import numpy as np
>>> w = np.array([[1.0, -2.0]], np.float32)
>>> head = json.dumps({"fc.weight": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}}).encode()
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
>>> _ = path.write_bytes(struct.pack("<Q", len(head)) + head + w.tobytes())
>>> tensors, meta = read_safetensors_tensors(path)
>>> tensors["fc.weight"].tolist(), meta
([[1.0, -2.0]], {})
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from modgraph.errors import FormatError
from modgraph.io._memory import new_array
from modgraph.io.registry import Reader, register_reader

__all__ = ["read_safetensors", "read_safetensors_tensors", "MAX_HEADER_BYTES", "DTYPES"]

#: The reference implementation's limit on the JSON header.
MAX_HEADER_BYTES = 100_000_000
#: safetensors dtype -> (numpy dtype in the file, itemsize); BF16 is converted after reading.
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
          "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def read_safetensors(path, *, activations=None):
    """Read a safetensors file of Linear/Conv weights (a state dict saved with safetensors).

    Returns a :class:`~modgraph.network.LayeredNetwork` for a chain of Linear layers, else a
    :class:`~modgraph.dag.DagNetwork`; emits an :class:`~modgraph.errors.AssumptionWarning` and
    records ``metadata["assumed"]`` (layer order, activations, conv geometry). ``activations``:
    one name per layer (default relu between layers, identity at the end).
    """
    from modgraph.io.state_chain import network_from_tensors

    path = Path(path)
    tensors, meta = read_safetensors_tensors(path)
    names, paired = layer_order(list(tensors))
    order = ("the header's keys in natural order (numbers compared as numbers; safetensors writers sort "
             "the keys, so this is the call order only if the module names sort that way)")
    if paired:
        order += "; each BatchNorm right after the layer of its parent module and number (" + ", ".join(
            f"{bn} after {conv}" for bn, conv in paired) + ")"
    return network_from_tensors({k: tensors[k] for k in names}, path, activations=activations,
                                source_format="safetensors", order=order,
                                extra_meta={"safetensors": {"metadata": meta}} if meta else None)


def layer_order(keys: list) -> tuple[list, list]:
    """Keys in natural order, except that a BatchNorm module (``running_mean`` key) follows the one
    weighted module with its parent and trailing number (``bn1`` -> ``conv1``), when there is one.
    Returns (keys, [(bn module, its layer)])."""
    keys = sorted(keys, key=natural_key)
    modules = list(dict.fromkeys(k.rpartition(".")[0] for k in keys))
    bns = {k.rpartition(".")[0] for k in keys if k.endswith(".running_mean")}

    def stem(m):
        parent, _, last = m.rpartition(".")
        digits = last[len(last.rstrip("0123456789")):]
        return (parent, digits) if digits and digits != last else None

    layers = [m for m in modules if m not in bns]
    after, paired = {}, []
    for bn in [m for m in modules if m in bns]:
        match = [m for m in layers if stem(bn) is not None and stem(m) == stem(bn)]
        if len(match) == 1 and match[0] not in after:
            after[match[0]] = bn
            paired.append((bn, match[0]))
    placed = set(after.values())
    ordered = []
    for m in modules:
        if m in placed:
            continue
        ordered.append(m)
        if m in after:
            ordered.append(after[m])
    by_module = {}
    for k in keys:
        by_module.setdefault(k.rpartition(".")[0], []).append(k)
    return [k for m in ordered for k in by_module[m]], paired


def natural_key(name: str):
    """Sort key: dot-separated parts, numbers compared as numbers (``2.weight`` < ``10.weight``)."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split(".")]


def _fail(path, place, expected, found):
    raise FormatError(path, place, expected, found)


def read_safetensors_tensors(path) -> tuple[dict, dict]:
    """(name -> array, ``__metadata__``) of a safetensors file; everything is checked before reading.

    Floating point tensors come back as float32 (F16, BF16 upcast) or float64; the others in their
    own dtype. Arrays are read-only views of buffers owned by nobody else.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        fh = open(path, "rb")
    except OSError as err:
        _fail(path, "file", "a readable safetensors file", str(err))
    with fh:
        first = fh.read(8)
        if len(first) < 8:
            _fail(path, "header length (bytes 0-7)", "an 8-byte little-endian header length", f"{len(first)} bytes")
        n = int.from_bytes(first, "little")
        if n > MAX_HEADER_BYTES:
            _fail(path, "header length (bytes 0-7)", f"a JSON header of at most {MAX_HEADER_BYTES} bytes",
                  f"{n} bytes declared")
        if n > size - 8:
            _fail(path, "header length (bytes 0-7)", f"a JSON header inside the file ({size - 8} bytes after the "
                  "length)", f"{n} bytes declared")
        raw = fh.read(n)
        entries, meta = _parse_header(path, raw)
        buffer = size - 8 - n
        spans = _check_offsets(path, entries, buffer)
        _claim(path, entries)
        out = {}
        for name, (dtype, shape, begin, end) in spans:
            fh.seek(8 + n + begin)
            arr = new_array(end - begin, np.uint8)
            got = fh.readinto(memoryview(arr))
            if got != end - begin:
                _fail(path, f"tensor {name!r}", f"{end - begin} bytes of data", f"{got} (the file changed while read)")
            out[name] = _convert(arr, dtype, shape)
    return {k: out[k] for k in entries}, meta


def _parse_header(path, raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        _fail(path, "JSON header", "UTF-8 text", f"invalid UTF-8 at byte {8 + err.start}")
    if not text.startswith("{"):
        _fail(path, "JSON header", "a JSON object starting with '{'", repr(text[:20]))
    try:
        header = json.loads(text)
    except json.JSONDecodeError as err:
        _fail(path, "JSON header", "valid JSON", f"{err.msg} at header byte {err.pos}")
    if not isinstance(header, dict):
        _fail(path, "JSON header", "a JSON object", type(header).__name__)
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        _fail(path, "JSON header '__metadata__'", "a map of strings to strings", repr(meta)[:80])
    entries = {}
    for name, e in header.items():
        place = f"JSON header tensor {name!r}"
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            _fail(path, place, "an object with dtype, shape, data_offsets",
                  repr(sorted(e)) if isinstance(e, dict) else type(e).__name__)
        dtype, shape, offs = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            _fail(path, place + " dtype", "one of " + ", ".join(DTYPES), repr(dtype))
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            _fail(path, place + " shape", "a list of non-negative integers", repr(shape)[:80])
        if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int and o >= 0 for o in offs)
                and offs[0] <= offs[1]):
            _fail(path, place + " data_offsets", "[begin, end] with 0 <= begin <= end", repr(offs)[:80])
        entries[name] = (dtype, tuple(shape), offs[0], offs[1])
    return entries, meta


def _check_offsets(path, entries: dict, buffer: int):
    """The spans sorted by begin: they tile the buffer [0, buffer) exactly, each the size its shape declares."""
    for name, (dtype, shape, begin, end) in entries.items():
        want = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
        if end - begin != want:
            _fail(path, f"JSON header tensor {name!r} data_offsets",
                  f"a span of {want} bytes (shape {list(shape)} x {dtype})", f"[{begin}, {end}] = {end - begin} bytes")
        if end > buffer:
            _fail(path, f"JSON header tensor {name!r} data_offsets", f"a span inside the {buffer}-byte data buffer",
                  f"[{begin}, {end}]")
    spans = sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3]))
    pos, prev = 0, None
    for name, (_, _, begin, end) in spans:
        if begin != pos:
            what = (f"a hole: bytes [{pos}, {begin}) belong to no tensor" if begin > pos else
                    f"an overlap with tensor {prev!r} (which ends at {pos})")
            _fail(path, f"JSON header tensor {name!r} data_offsets",
                  f"a span starting at {pos} (spans follow each other, no holes or overlaps)",
                  f"[{begin}, {end}]: {what}")
        pos, prev = end, name
    if pos != buffer:
        _fail(path, "data buffer", f"exactly the {pos} bytes the tensors declare",
              f"{buffer} bytes ({buffer - pos} bytes belong to no tensor)")
    return spans


def _claim(path, entries: dict) -> None:
    """The shared size guard (modgraph.io.limits), when present, on every declared array."""
    try:
        from modgraph.io.limits import SizeGuard
    except ImportError:
        return
    guard = SizeGuard(path)
    for name, (dtype, shape, begin, end) in entries.items():
        out = np.float32 if dtype in ("F16", "BF16") else DTYPES[dtype]
        guard.claim(f"tensor {name!r}", shape, out, None)


def _convert(raw: np.ndarray, dtype: str, shape) -> np.ndarray:
    a = raw.view(DTYPES[dtype]).reshape(shape)
    if dtype == "BF16":
        a = (a.astype(np.uint32) << 16).view(np.float32)
    elif dtype == "F16":
        a = a.astype(np.float32)
    if a.dtype.byteorder not in ("=", "|"):
        a = a.astype(a.dtype.newbyteorder("="))
    a.flags.writeable = False
    return a


def _sniff(path: Path, head: bytes) -> bool:
    return len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") >= 2


register_reader(Reader("safetensors", "safetensors file of Linear/Conv weights (no topology: a chain is assumed)",
                       _sniff, read_safetensors, options=("activations",)))
