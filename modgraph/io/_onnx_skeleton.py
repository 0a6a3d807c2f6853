"""Parse an ONNX file without pulling its weights into the protobuf: a skeleton plus byte ranges.

The protobuf wire format is walked just deep enough (ModelProto.graph -> GraphProto.initializer
-> TensorProto.raw_data) to cut each initializer's ``raw_data`` out of the message. What is left
(the skeleton: graph structure, names, attributes, small constants) is parsed by ``onnx``;
the weights are read later straight from the file at the recorded offsets, once, into arrays
modgraph keeps. This halves the peak memory of a load and skips a copy per tensor.

Any surprise in the wire format returns ``None`` so the caller falls back to ``onnx.load``
(which then explains the damage).
"""
from __future__ import annotations

import mmap
from pathlib import Path

__all__ = ["read_skeleton"]

_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_NAME, _TENSOR_RAW = 7, 5, 8, 9


class _Bad(Exception):
    pass


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= end or shift > 63:
            raise _Bad
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(buf, pos: int, end: int):
    """Yield (field number, wire type, start of field, start of payload, end of field)."""
    while pos < end:
        start = pos
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos2 = _varint(buf, pos, end)
            body = pos
        elif wire == 1 or wire == 5:
            body, pos2 = pos, pos + (8 if wire == 1 else 4)
        elif wire == 2:
            length, body = _varint(buf, pos, end)
            pos2 = body + length
        else:                                       # groups (3, 4) never appear in ONNX
            raise _Bad
        if pos2 > end or number == 0:
            raise _Bad
        yield number, wire, start, body, pos2
        pos = pos2


def _submessage(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _tensor(buf, body: int, end: int):
    """An initializer without its raw_data, and (name, offset, length) of the raw bytes."""
    parts, name, raw = [], None, None
    for number, wire, start, payload, stop in _fields(buf, body, end):
        if number == _TENSOR_RAW and wire == 2 and raw is None:
            raw = (payload, stop - payload)
            continue
        if number == _TENSOR_NAME and wire == 2:
            name = bytes(buf[payload:stop]).decode("utf-8", "replace")
        parts.append(bytes(buf[start:stop]))
    return b"".join(parts), (None if raw is None or name is None else (name, *raw))


def _graph(buf, body: int, end: int):
    parts, ranges = [], {}
    for number, wire, start, payload, stop in _fields(buf, body, end):
        if number == _GRAPH_INITIALIZER and wire == 2:
            tensor, raw = _tensor(buf, payload, stop)
            if raw is not None and raw[0] not in ranges:
                ranges[raw[0]] = raw[1:]
                parts.append(_submessage(number, tensor))
                continue
        parts.append(bytes(buf[start:stop]))
    return b"".join(parts), ranges


def read_skeleton(path: Path):
    """``(skeleton bytes, {initializer name: (offset, length)})``, or None when not walkable."""
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            parts, ranges = [], {}
            for number, wire, start, payload, stop in _fields(buf, 0, len(buf)):
                if number == _MODEL_GRAPH and wire == 2 and not ranges:
                    graph, ranges = _graph(buf, payload, stop)
                    parts.append(_submessage(number, graph))
                else:
                    parts.append(bytes(buf[start:stop]))
            return b"".join(parts), ranges
    except (_Bad, ValueError, OSError):             # empty file (mmap ValueError), damage: fall back
        return None
