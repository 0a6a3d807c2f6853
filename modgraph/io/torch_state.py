"""PyTorch state dicts (``.pt``/``.pth``): Linear (and Conv) weights in order, with their biases.

torch is imported lazily inside :func:`read_torch_state` (modgraph never imports it at import
time) and the file is always read with ``torch.load(..., weights_only=True)``: a file holding
pickled objects is refused, never unpickled. A checkpoint dict holding the state dict under
``state_dict``/``model_state_dict``/``model`` is unwrapped; float16/bfloat16 become float32.
The tensors are then read by :mod:`modgraph.io.state_chain` (shared with safetensors): layers
are the parameter prefixes that own a ``weight`` in the dict's order (``0.weight``, ``0.bias``,
``2.weight``, ...); masks are applied (``weight_orig`` x ``weight_mask`` from
``torch.nn.utils.prune``: the mask is the edge set, so a kept weight may be exactly 0; or a
``mask`` tensor beside the weight); a state dict stores no activations, so ``activations``
names them, by default ``relu`` for hidden layers and ``identity`` for the last. Every load
says what it assumed (an :class:`~modgraph.errors.AssumptionWarning`, ``metadata["assumed"]``).
Every entry must belong to a layer (nothing is silently ignored); BatchNorm buffers are read
only directly after a conv of their width; what cannot be a chain is refused with the
``torch.onnx.export`` call to use instead.

Examples
--------
>>> import pathlib, tempfile, torch
>>> path = pathlib.Path(tempfile.mkdtemp()) / "sd.pt"
>>> torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1)).state_dict(), path)
>>> net = read_torch_state(path)
>>> net.widths, [layer.activation for layer in net.layers], net.source_format
((3, 2, 1), ['relu', 'identity'], 'torch-state-dict')
"""
from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from modgraph.errors import FormatError
from modgraph.io.limits import SizeGuard
from modgraph.io.registry import Reader, register_reader
from modgraph.io.state_chain import network_from_tensors

__all__ = ["read_torch_state"]

_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_WRAPPERS = ("state_dict", "model_state_dict", "model")
_SUFFIXES = ("weight", "bias", "weight_orig", "weight_mask", "bias_orig", "bias_mask", "mask")


def read_torch_state(path, *, activations=None):
    """Read a PyTorch state dict of Linear (and Conv) layers; defects raise :class:`FormatError`.

    Parameters
    ----------
    path : str or Path
    activations : sequence of str, optional
        One activation per layer (names of :data:`modgraph.network.ACTIVATIONS`); default
        ``relu`` for hidden layers and ``identity`` for the output layer.

    Returns a :class:`LayeredNetwork` for Linear layers, a :class:`~modgraph.dag.DagNetwork` when
    there are convs (:mod:`modgraph.io.state_chain`); every load emits an
    :class:`~modgraph.errors.AssumptionWarning` and records ``metadata["assumed"]``.
    """
    path = Path(path)
    state = _load(path)
    return network_from_tensors(state, path, activations=activations, source_format="torch-state-dict",
                                order="key order (the state dict's order, which is registration order, not "
                                      "necessarily call order)")


def _load(path: Path) -> dict:
    try:
        import torch
    except ImportError as err:
        raise FormatError(path, "file", "torch installed to read a PyTorch state dict (pip install torch)",
                          "no torch module") from err
    _check_sizes(path)
    try:
        with warnings.catch_warnings():       # torch warns about pickle protocols before it refuses them
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:      # UnpicklingError for pickled objects, RuntimeError for damaged zips
        raise FormatError(path, "torch.load(weights_only=True)",
                          "a state dict of tensors (pickled objects are refused, never unpickled)",
                          _load_failure(path, str(err))) from err
    if isinstance(obj, dict):
        for key in _WRAPPERS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        found = type(obj).__name__ if not isinstance(obj, dict) else "non-tensor values under " + ", ".join(
            repr(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))[:200]
        raise FormatError(path, "state dict", "a dict of name -> tensor", found)
    return {str(k): _numpy(torch, v, path, str(k)) for k, v in obj.items()}


def _check_sizes(path: Path) -> None:
    """torch's zip format: every member's unpacked size checked against its stored bytes and the
    ceilings (:mod:`modgraph.io.limits`) before torch reads (and allocates) anything."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except Exception:       # noqa: BLE001 - legacy format or damage: torch.load explains it
        return
    guard = SizeGuard(path)
    for info in infos:
        guard.zip_member(info, f"zip member {info.filename!r}")


_MAX_REASON = 300


def _load_failure(path: Path, message: str) -> str:
    """A one-line account of why torch.load refused the file, never cut mid-sentence."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", message)
    unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if unsafe:
        return f"pickled Python objects (a {unsafe.group(1)})"
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_LEGACY_MAGIC))
    except OSError:
        head = b""
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|$)", text, re.S)
    detail = " ".join(detail.group(1).split()) if detail else None
    if not head:
        return "an empty file (0 bytes)"
    if head[:1] == b"\x80" and head[1:2] and 1 <= head[1] <= 5 and not head.startswith(_LEGACY_MAGIC):
        return (f"a plain Python pickle (protocol {head[1]}, written by pickle.dump rather than torch.save), "
                "which torch.load(weights_only=True) cannot read as tensors" + (f" ({detail})" if detail else ""))
    if detail:
        return f"content torch.load(weights_only=True) cannot read ({_sentence(detail)})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"an unreadable or damaged file ({_sentence(lines[0]) if lines else 'torch gave no reason'})"


def _sentence(text: str) -> str:
    """``text`` whole when short, else its first sentences up to the limit (or words, marked)."""
    if len(text) <= _MAX_REASON:
        return text
    cut = text.rfind(". ", 0, _MAX_REASON)
    if cut > 0:
        return text[:cut + 1]
    return text[:text.rfind(" ", 0, _MAX_REASON)].rstrip(",;:") + " ..."


def _numpy(torch, t, path: Path, key: str) -> np.ndarray:
    if t.layout != torch.strided:
        raise FormatError(path, f"state dict entry {key!r}", "a dense (strided) tensor", str(t.layout))
    t = t.detach()
    if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
        t = t.float()                         # float16 / bfloat16 -> float32
    return t.numpy()


def _sniff(path: Path, head: bytes) -> bool:
    if head.startswith(_LEGACY_MAGIC):
        return True
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                return any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
        except Exception:       # noqa: BLE001 - a sniffer never raises
            return path.suffix.lower() in (".pt", ".pth")
    return path.suffix.lower() in (".pt", ".pth")


register_reader(Reader("torch-state-dict", "PyTorch state dict (.pt/.pth, read with weights_only=True)",
                       _sniff, read_torch_state, options=("activations",)))
