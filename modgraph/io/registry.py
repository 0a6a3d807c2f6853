"""The reader registry: ``load`` picks a reader by the file's content, not its name."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from modgraph.errors import FormatError
from modgraph.network import LayeredNetwork

__all__ = ["Reader", "READERS", "register_reader", "load", "HDF5_MAGIC"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_HEAD_BYTES = 1024


@dataclass(frozen=True)
class Reader:
    """A file format modgraph can read.

    ``sniff(path, head)`` gets the first bytes of the file and answers whether this
    reader owns it (it may open the file to look closer, but must not raise);
    ``read(path)`` returns a :class:`LayeredNetwork` or raises :class:`FormatError`.
    """

    name: str
    description: str
    sniff: Callable[[Path, bytes], bool]
    read: Callable[[Path], LayeredNetwork]


READERS: list[Reader] = []


def register_reader(reader: Reader) -> Reader:
    """Add a reader (readers are asked in registration order); returns it."""
    if any(r.name == reader.name for r in READERS):
        raise ValueError(f"a reader named {reader.name!r} is already registered")
    READERS.append(reader)
    return reader


def load(path) -> LayeredNetwork:
    """Read any supported network file into a :class:`LayeredNetwork`.

    The reader is chosen by content (magic bytes and a look inside), so a file's
    suffix does not matter. ``network.source_format`` names the reader used.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file", "an existing network file", "no such file" if not path.exists()
                          else "not a regular file")
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    for reader in READERS:
        if reader.sniff(path, head):
            return reader.read(path)
    kinds = "; ".join(f"{r.name} ({r.description})" for r in READERS)
    found = "an empty file" if not head else f"a file starting with {head[:8]!r}"
    raise FormatError(path, "start of file", f"one of the supported formats: {kinds}", found)
