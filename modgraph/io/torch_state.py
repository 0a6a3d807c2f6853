"""PyTorch state dicts (``.pt``/``.pth``): the 2-D weight tensors in order, with their biases.

torch is imported lazily inside :func:`read_torch_state` (modgraph never imports it at import
time) and the file is always read with ``torch.load(..., weights_only=True)``: a file holding
pickled objects is refused, never unpickled. Layers are the parameter prefixes that own a
2-D ``weight`` in the dict's order (``0.weight``, ``0.bias``, ``2.weight``, ...). Masks are
applied: ``weight_orig`` × ``weight_mask`` from ``torch.nn.utils.prune`` (the mask is the
edge set, so a kept weight may be exactly 0), or a ``mask`` tensor beside the weight. A
checkpoint dict holding the state dict under ``state_dict``/``model_state_dict``/``model``
is unwrapped. A state dict stores no activations: ``activations`` names them, by default
``relu`` for hidden layers and ``identity`` for the last (recorded in the metadata).
Every entry must belong to a linear layer (nothing is silently ignored); BatchNorm buffers
are refused: their place relative to the activations is not stored.

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
from modgraph.io._chain import Chain, dense_to_csr
from modgraph.io.limits import SizeGuard
from modgraph.io.registry import Reader, register_reader
from modgraph.network import ACTIVATIONS, LayeredNetwork

__all__ = ["read_torch_state"]

_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_WRAPPERS = ("state_dict", "model_state_dict", "model")
_SUFFIXES = ("weight", "bias", "weight_orig", "weight_mask", "bias_orig", "bias_mask", "mask")


def read_torch_state(path, *, activations=None) -> LayeredNetwork:
    """Read a PyTorch state dict of linear layers; defects raise :class:`FormatError`.

    Parameters
    ----------
    path : str or Path
    activations : sequence of str, optional
        One activation per layer (names of :data:`modgraph.network.ACTIVATIONS`); default
        ``relu`` for hidden layers and ``identity`` for the output layer.
    """
    path = Path(path)
    state = _load(path)
    groups = _group(state, path)
    if not groups:
        raise FormatError(path, "state dict", "at least one 2-D '<layer>.weight' tensor",
                          f"keys {sorted(state)[:8]}")
    acts = list(activations) if activations is not None else ["relu"] * (len(groups) - 1) + ["identity"]
    if len(acts) != len(groups) or any(a not in ACTIVATIONS for a in acts):
        raise ValueError(f"activations: expected {len(groups)} names from {', '.join(sorted(ACTIVATIONS))}, "
                         f"got {acts}")
    chain = Chain(None, path, "input", None)
    for (prefix, tensors), act in zip(groups.items(), acts):
        weight, mask, bias = _layer_arrays(prefix, tensors, path)
        w = dense_to_csr(weight) if mask is None else _masked_csr(weight, mask)
        chain.start_layer(w, bias, f"state dict layer {prefix!r}")
        if act != "identity":
            chain.activate(act, 0.01, f"state dict layer {prefix!r}")
    chain.finish()
    meta = {"torch": {"layers": list(groups), "activations": acts,
                      "activations_source": "given" if activations is not None else
                      "assumed (a state dict stores no activations): relu hidden, identity output"}}
    return LayeredNetwork(chain.layers(), metadata=meta, source=str(path), source_format="torch-state-dict")


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


def _group(state: dict, path: Path) -> dict:
    """prefix -> {suffix: array}, one per linear layer, in the dict's order (anything else refused)."""
    groups: dict[str, dict] = {}
    for key, value in state.items():
        prefix, _, suffix = key.rpartition(".")
        if suffix in ("running_mean", "running_var", "num_batches_tracked"):
            raise FormatError(path, f"state dict entry {key!r}", "only linear layers (weight, bias, masks)",
                              "BatchNorm buffers (their place relative to the activations is not stored; "
                              "export the model to ONNX instead)")
        groups.setdefault(prefix, {})[suffix] = value
    for prefix, tensors in groups.items():     # every entry must belong to a linear layer: nothing ignored
        w = tensors.get("weight", tensors.get("weight_orig"))
        name = f"{prefix}.weight" if prefix else "weight"
        if w is None:
            keys = [f"{prefix}.{k}" if prefix else k for k in tensors]
            raise FormatError(path, f"state dict entries {', '.join(map(repr, keys))}",
                              "parts of a linear layer with a 2-D weight", "no weight beside them")
        if w.ndim != 2:
            raise FormatError(path, f"state dict entry {name!r}", "a 2-D linear weight (out, in)",
                              f"shape {tuple(w.shape)}" + (" (a convolution?)" if w.ndim > 2 else
                                                           " (a normalisation or embedding layer?)"))
        unknown = set(tensors) - set(_SUFFIXES)
        if unknown:
            raise FormatError(path, f"state dict layer {prefix!r}", "entries " + ", ".join(_SUFFIXES),
                              ", ".join(sorted(unknown)))
    return groups


def _layer_arrays(prefix: str, t: dict, path: Path):
    place = f"state dict layer {prefix!r}"
    weight = t["weight_orig"] if "weight_orig" in t else t["weight"]
    mask = t.get("weight_mask", t.get("mask"))
    if mask is not None and mask.shape != weight.shape:
        raise FormatError(path, f"{place} mask", f"shape {tuple(weight.shape)}", f"shape {tuple(mask.shape)}")
    if "bias_orig" in t and "bias_mask" in t:
        bias = t["bias_orig"] * t["bias_mask"]
    else:
        bias = t.get("bias", t.get("bias_orig"))
    if bias is None:
        bias = np.zeros(weight.shape[0], weight.dtype)
    if bias.shape != (weight.shape[0],):
        raise FormatError(path, f"{place} bias", f"shape ({weight.shape[0]},)", f"shape {tuple(bias.shape)}")
    return weight, (None if mask is None else mask != 0), bias.astype(np.float64)


def _masked_csr(weight: np.ndarray, mask: np.ndarray):
    """CSR whose stored entries are exactly the mask (kept weights that are 0.0 stay stored)."""
    import scipy.sparse as sp
    rows, cols = np.nonzero(mask)
    m = sp.csr_matrix((weight[rows, cols], (rows, cols)), shape=weight.shape)
    return m if m.dtype.kind == "f" else m.astype(np.float64)


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
                       _sniff, read_torch_state))
