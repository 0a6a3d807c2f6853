"""The reader registry: ``load`` picks a reader by the file's content, not its name."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from modgraph.errors import FormatError

__all__ = ["Reader", "READERS", "register_reader", "Refusal", "REFUSALS", "register_refusal", "load", "HDF5_MAGIC",
           "has_hdf5_magic"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_HEAD_BYTES = 1024


def has_hdf5_magic(path: Path, head: bytes) -> bool:
    """Whether the file starts with the HDF5 signature (a ``Reader.native`` test for HDF5 readers)."""
    return head.startswith(HDF5_MAGIC)


@dataclass(frozen=True)
class Reader:
    """A file format modgraph can read.

    ``sniff(path, head)`` gets the first bytes of the file and answers whether this
    reader owns it (it may open the file to look closer, but must not raise);
    ``read(path)`` returns a :class:`~modgraph.network.LayeredNetwork` (a :class:`~modgraph.dag.DagNetwork` for a
    network that is not a dense chain) or raises :class:`FormatError`; ``options`` names the keyword options
    ``read`` also takes (``activations`` for formats that store none: state dicts, safetensors).
    ``native(path, head)``, when given, answers in pure Python (no C parser) whether sniffing or reading
    this file would go through libhdf5; ``load`` then runs the whole read in a child process
    (:mod:`modgraph.io.isolate`).
    """

    name: str
    description: str
    sniff: Callable[[Path, bytes], bool]
    read: Callable[[Path], object]
    options: tuple = ()
    native: Callable[[Path, bytes], bool] | None = None


@dataclass(frozen=True)
class Refusal:
    """A format modgraph recognises but does not read: ``explain(path, head)`` returns what was
    found (for the error message) when the file is of that format, else ``None``; it must not raise.
    Refusals are asked only after every reader declined, so a reader registered later for the
    same format takes over without removing its refusal."""

    name: str
    explain: Callable[[Path, bytes], "str | None"]


READERS: list[Reader] = []
REFUSALS: list[Refusal] = []


def register_reader(reader: Reader) -> Reader:
    """Add a reader (readers are asked in registration order); returns it."""
    if any(r.name == reader.name for r in READERS):
        raise ValueError(f"a reader named {reader.name!r} is already registered")
    READERS.append(reader)
    return reader


def register_refusal(refusal: Refusal) -> Refusal:
    """Add a recognised-but-unsupported format (asked in registration order); returns it."""
    REFUSALS.append(refusal)
    return refusal


def load(path, *, limits=None, activations=None, isolate=None):
    """Read any supported network file: a :class:`~modgraph.network.LayeredNetwork` for a chain of
    dense layers, a :class:`~modgraph.dag.DagNetwork` for anything else (a CNN or residual/concat DAG
    from ONNX, Keras, a state dict or safetensors file, a modgraph HDF5 version 2.0 file).

    The reader is chosen by content (magic bytes and a look inside), so a file's
    suffix does not matter for most formats (a ``.onnx``/``.keras``/``.pt`` suffix lets that
    reader explain a damaged file). ``network.source_format`` names the reader used.
    ``limits`` (a :class:`modgraph.io.limits.Limits`) replaces the size ceilings of this read
    (default: from the environment, ``docs/formats.md``). ``activations`` (one name per layer)
    states the activations of a file that stores none (state dicts, safetensors); for other
    formats it is an error (``ValueError``).

    A file read through libhdf5 (modgraph HDF5, Keras ``.h5`` / ``.keras``) is read in a forked child
    under a time limit (:mod:`modgraph.io.isolate`), so a hang or crash of the C library on a damaged
    file is a :class:`FormatError`; ``isolate=False`` (or ``Limits(isolate=False)``,
    ``MODGRAPH_ISOLATE=0``) reads in-process, for files you trust; ``None`` follows ``limits``.
    """
    from dataclasses import replace

    from modgraph.io.limits import using_limits

    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file", "an existing network file", "no such file" if not path.exists()
                          else "not a regular file")
    kinds = "; ".join(f"{r.name} ({r.description})" for r in READERS)
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if not head:
        raise FormatError(path, "start of file", f"one of the supported formats: {kinds}", "an empty file (0 bytes)")
    with using_limits(limits) as active:
        if isolate is None:
            isolate = active.isolate
        if isolate and any(r.native is not None and r.native(path, head) for r in READERS):
            from modgraph.io.isolate import isolation_wanted, run_isolated

            if isolation_wanted():
                return run_isolated(path, lambda: load(path, activations=activations, isolate=False))
        if not isolate and active.isolate:
            with using_limits(replace(active, isolate=False)):
                return load(path, activations=activations, isolate=False)
        for reader in READERS:
            if reader.sniff(path, head):
                if activations is None:
                    return reader.read(path)
                if "activations" not in reader.options:
                    raise ValueError(f"{path}: activations can be given only for files that store none (state "
                                     f"dicts, safetensors); this is a {reader.name} file, whose activations are "
                                     "read from it")
                return reader.read(path, activations=activations)
    for refusal in REFUSALS:
        found = refusal.explain(path, head)
        if found:
            raise FormatError(path, "file", f"one of the supported formats: {kinds}", found)
    raise FormatError(path, "start of file", f"one of the supported formats: {kinds}",
                      f"a file starting with {head[:8]!r}")

