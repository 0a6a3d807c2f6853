"""Keras 3 ``.keras`` files (``model.save("m.keras")``): a zip of ``config.json`` and ``model.weights.h5``.

The layer order, classes and activations come from ``config.json`` (the same model config as
a legacy ``.h5`` file's ``model_config``, read by :mod:`modgraph.io.keras`); the weights from
``model.weights.h5``, where each layer is a group ``layers/<key>/vars`` whose ``name``
attribute is the layer's name and whose datasets ``0, 1, ...`` are its variables in Keras'
order: a ``Dense`` has kernel (in, out), bias; a ``BatchNormalization`` gamma (when
``scale``), beta (when ``center``), moving_mean, moving_variance. The inner HDF5 file is read
in place from the archive; members whose stated size is out of proportion with their stored
bytes (zip bombs) are refused before reading.

Examples
--------
>>> import os, pathlib, tempfile
>>> os.environ.setdefault("KERAS_BACKEND", "torch")
'torch'
>>> import keras
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="tanh")])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.keras"
>>> model.save(path)
>>> net = read_keras_zip(path)
>>> net.widths, net.layers[0].activation, net.source_format
((3, 2), 'tanh', 'keras')
"""
from __future__ import annotations

import json
import lzma
import zipfile
import zlib
from pathlib import Path

import h5py

from modgraph.errors import FormatError
from modgraph.io.hdf5 import isolated
from modgraph.io.keras import network_from_config
from modgraph.io.limits import SizeGuard
from modgraph.io.registry import Reader, register_reader
from modgraph.network import LayeredNetwork

__all__ = ["read_keras_zip"]

_MEMBERS = ("config.json", "model.weights.h5")
_KERNEL_LAYERS = ("Dense", "Conv2D", "DepthwiseConv2D")      # variables: kernel, bias (when use_bias)
_MAX_JSON_BYTES, _MAX_RATIO = 64 * 2**20, 1024


def read_keras_zip(path) -> LayeredNetwork:
    """Read a Keras 3 ``.keras`` archive; defects raise :class:`FormatError`."""
    path = Path(path)
    return isolated(path, lambda: _read_checked(path))


def _read_checked(path: Path) -> LayeredNetwork:
    try:
        return _read_zip(path)
    except FormatError:
        raise
    except _ZIP_DAMAGE as err:       # what zipfile, zlib, h5py and json raise on damaged members
        raise FormatError(path, "zip archive", "a complete .keras zip archive",
                          f"damage ({type(err).__name__}: {err})") from err


_ZIP_DAMAGE = (lzma.LZMAError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error, OSError,
               KeyError, RuntimeError, TypeError, ValueError, UnicodeDecodeError)


def _read_zip(path: Path) -> LayeredNetwork:
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise FormatError(path, "zip directory", "a complete .keras zip archive", f"{err}") from err
    guard = SizeGuard(path)
    with z:
        infos = {i.filename: i for i in z.infolist()}
        for member in _MEMBERS:
            _check_member(guard, infos.get(member), member)
        meta = _metadata(z, infos, guard)
        try:
            with z.open("model.weights.h5") as inner, h5py.File(inner, "r") as f:
                variables = _variables(f, path)
                return network_from_config(z.read("config.json"), "config.json",
                              lambda kind, cfg, place: _named(variables, kind, cfg, guard, place), path, meta, "keras")
        except (OSError, KeyError, RuntimeError, TypeError, zipfile.BadZipFile) as err:
            raise FormatError(path, "model.weights.h5", "a readable Keras weights file", f"damage ({err})") from err


def _check_member(guard: SizeGuard, info, member: str) -> None:
    """A member's unpacked size against its stored bytes (the shared guard) before it is read; the
    weights file is streamed (its datasets are claimed one by one), the JSON files are read whole."""
    if info is None:
        raise FormatError(guard.path, f"zip member {member!r}", "present (a .keras archive)", "missing")
    json_file = member.endswith(".json")
    limit = _MAX_JSON_BYTES if json_file else _MAX_RATIO * max(info.compress_size, 2**20)
    if info.file_size > limit:              # out of proportion whatever the compression method
        raise FormatError(guard.path, f"zip member {member!r}", f"at most {limit} bytes once unpacked",
                          f"{info.file_size} bytes from {info.compress_size} stored")
    guard.zip_member(info, f"zip member {member!r}", max_bytes=_MAX_JSON_BYTES if json_file else None,
                     count=json_file)


def _metadata(z: zipfile.ZipFile, infos: dict, guard: SizeGuard) -> dict:
    path = guard.path
    if "metadata.json" not in infos:
        return {}
    _check_member(guard, infos["metadata.json"], "metadata.json")
    try:
        meta = json.loads(z.read("metadata.json"))
    except json.JSONDecodeError as err:
        raise FormatError(path, "metadata.json", "a JSON object", str(err)) from err
    return {"keras_version": meta.get("keras_version")} if isinstance(meta, dict) else {}


def _variables(f: h5py.File, path: Path) -> dict:
    """Layer name -> its variables in order, from ``layers/<key>/vars``."""
    layers = f.get("layers")
    if not isinstance(layers, h5py.Group):
        raise FormatError(path, "model.weights.h5 /layers", "a group of layers", "missing")
    out = {}
    for key, group in layers.items():
        vars_ = group.get("vars") if isinstance(group, h5py.Group) else None
        if not isinstance(vars_, h5py.Group):
            continue
        name = vars_.attrs.get("name", key)
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name in out:
            raise FormatError(path, f"model.weights.h5 /layers/{key}/vars", "one group per layer name",
                              f"a second group for {name!r}")
        out[name] = [vars_[str(i)] for i in range(len(vars_))]
    return out


def _named(variables: dict, kind: str, cfg: dict, guard: SizeGuard, place: str) -> dict:
    """A layer's variables under their short names, in Keras' variable order for its class (each
    dataset's declared size checked against its stored bytes before it is read)."""
    path = guard.path
    kernel = kind in _KERNEL_LAYERS
    order = (["kernel", "bias"] if kernel else
             ["gamma"] * bool(cfg.get("scale", True)) + ["beta"] * bool(cfg.get("center", True))
             + ["moving_mean", "moving_variance"])
    found = variables.get(cfg.get("name"), [])
    expected = ["kernel"] if kernel and not cfg.get("use_bias", True) else order
    if len(found) != len(expected) or any(not isinstance(d, h5py.Dataset) or d.dtype.kind != "f" for d in found):
        raise FormatError(path, f"{place} weights", f"{len(expected)} float variables ({', '.join(expected)})",
                          f"{len(found)}")
    for d in found:
        guard.hdf5(d, f"model.weights.h5 {d.name}")
    return {name: d[()] for name, d in zip(expected, found)}


def _sniff(path: Path, head: bytes) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return set(_MEMBERS) <= set(z.namelist()) or path.suffix.lower() == ".keras"
    except Exception:        # noqa: BLE001 - a sniffer never raises; read_keras_zip explains the damage
        return path.suffix.lower() == ".keras"


register_reader(Reader("keras", "Keras 3 .keras archive (model.save('m.keras'))", _sniff, read_keras_zip,
                       native=_sniff))
