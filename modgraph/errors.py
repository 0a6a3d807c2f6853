"""Errors modgraph raises at its boundaries.

Every error about a file names the file, the place inside it, what was expected and
what was found, so a user can fix the input without reading our code.
"""
from __future__ import annotations

__all__ = ["ModgraphError", "FormatError", "UnsupportedOpError", "AssumptionWarning"]


class ModgraphError(Exception):
    """Base class of every error modgraph raises on purpose."""


class FormatError(ModgraphError, ValueError):
    """A file (or an in-memory value) does not have the content modgraph expects.

    Parameters
    ----------
    path : str or None
        The file, or a short description of the value (``"<network>"``).
    place : str
        Where inside it: an HDF5 path, an ONNX node, a layer index.
    expected, found : str
        What should have been there and what was there.

    Examples
    --------
    >>> err = FormatError("net.h5", "/layers/000/weight/indptr", "6 entries", "5")
    >>> str(err)
    'net.h5: /layers/000/weight/indptr: expected 6 entries, found 5'
    """

    def __init__(self, path, place: str, expected: str, found: str):
        self.path = None if path is None else str(path)
        self.place = place
        self.expected = expected
        self.found = found
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{place}: expected {expected}, found {found}")


class UnsupportedOpError(FormatError):
    """A graph holds operations the reader cannot represent.

    ``op`` is the op type (several, comma-separated, when ``nodes`` lists more than one node),
    ``supported`` the ops the reader knows, ``nodes`` the place of every unsupported node.
    """

    def __init__(self, path, place: str, op: str, supported, *, nodes=None):
        self.op = op
        self.supported = tuple(sorted(supported))
        self.nodes = tuple(nodes) if nodes is not None else (place,)
        found = (f"unsupported op {op!r}" if nodes is None
                 else f"{len(self.nodes)} unsupported op(s): " + ", ".join(self.nodes))
        super().__init__(path, place, "one of the supported ops (" + ", ".join(self.supported) + ")", found)


class AssumptionWarning(UserWarning):
    """A reader filled in what the file does not store (layer order, activations, conv geometry of a
    state dict or safetensors file); the same text is in ``network.metadata["assumed"]``."""
