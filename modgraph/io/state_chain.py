"""Weights without topology (PyTorch state dicts, safetensors) read as a chain, saying what was assumed.

A state dict or a safetensors file holds tensors by name and nothing about how they are called.
This module reads them as the one structure they can be shown to be: a **chain** of Linear and
Conv layers whose shapes chain, each optionally followed by a BatchNorm of its width (convs only),
and says on every load what it assumed (an :class:`~modgraph.errors.AssumptionWarning`,
``net.metadata["assumed"]``, and ``activation_assumed`` on a DAG's groups):

- layer order = key order (a state dict's insertion order; safetensors: see its reader);
- activations: ``relu`` between layers and ``identity`` at the end, unless given;
- for convs (no geometry is stored): stride 1, dilation 1, 'same' padding, no pooling, group
  inferred from the shapes (input channels / the kernel's second axis), BatchNorm directly after
  its conv and before the activation with eps 1e-5 (PyTorch's default); a 1x1 conv must read every
  channel (one that reads a part is taken for a shortcut and refused); the first Linear reads
  the last conv's output flattened in C, H, W order, ``in_features = C x S`` with the spatial size
  S inferred (only when it divides exactly) and laid out as H x W = S (square when S is a square,
  else 1 x S); so the unit graph (edges from the kernels and the Linear's weight) is exact, and
  the forward pass is the network's only where those assumptions hold.

What cannot be a chain is refused with a message that says to export the model to ONNX: keys
of ``downsample``/``shortcut`` modules, shapes that do not chain (a 1x1 shortcut conv, a block
read twice), BatchNorm statistics whose width is not that of the conv before them.

A chain of Linear layers only is returned as a :class:`~modgraph.network.LayeredNetwork` (exactly
as before); anything with a conv as a :class:`~modgraph.dag.DagNetwork`.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from modgraph.errors import AssumptionWarning, FormatError
from modgraph.io._chain import Chain, dense_to_csr
from modgraph.network import ACTIVATIONS, LayeredNetwork

__all__ = ["network_from_tensors", "ONNX_HINT", "parse_activations"]

#: What a user should do when the weights cannot be read as a chain.
ONNX_HINT = ('export the model to ONNX and load that file instead (it keeps the topology): '
             'torch.onnx.export(model, torch.randn(1, C, H, W), "model.onnx", dynamo=False)')
_SUFFIXES = ("weight", "bias", "weight_orig", "weight_mask", "bias_orig", "bias_mask", "mask")
_BN = ("running_mean", "running_var", "num_batches_tracked")
_BRANCH_KEYS = ("downsample", "shortcut")
_BN_EPS = 1e-5


def parse_activations(text: str | None):
    """``"relu,tanh"`` -> ``["relu", "tanh"]`` (the ``--activations`` option); None stays None."""
    if text is None:
        return None
    names = [a.strip() for a in str(text).split(",") if a.strip()]
    bad = [a for a in names if a not in ACTIVATIONS]
    if bad or not names:
        raise ValueError(f"--activations: expected comma-separated names from {', '.join(sorted(ACTIVATIONS))}, "
                         f"got {text!r}")
    return names


def _refuse(path, place, expected, found):
    raise FormatError(path, place, expected, f"{found}; {ONNX_HINT}")


def _group(state: dict, path: Path) -> dict:
    """prefix -> {suffix: array} in the dict's order; branch modules refused, every entry accounted for."""
    groups: dict[str, dict] = {}
    has_conv = any(k.rpartition(".")[2] in ("weight", "weight_orig") and v.ndim == 4 for k, v in state.items())
    for key, value in state.items():
        parts = key.split(".")
        branch = next((p for p in parts[:-1] if p in _BRANCH_KEYS), None)
        if branch:
            _refuse(path, f"state dict entry {key!r}", "the weights of a chain of layers (a state dict stores no "
                    "topology)", f"a {branch!r} module: a residual branch beside the chain")
        prefix, _, suffix = key.rpartition(".")
        if suffix in _BN and not has_conv:
            raise FormatError(path, f"state dict entry {key!r}", "only linear layers (weight, bias, masks)",
                              "BatchNorm buffers (their place relative to the activations is not stored; "
                              "export the model to ONNX instead)")
        groups.setdefault(prefix, {})[suffix] = value
    for prefix, tensors in groups.items():     # every entry must belong to a layer: nothing ignored
        if _is_bn(tensors):
            continue
        w = tensors.get("weight", tensors.get("weight_orig"))
        name = f"{prefix}.weight" if prefix else "weight"
        if w is None:
            keys = [f"{prefix}.{k}" if prefix else k for k in tensors]
            raise FormatError(path, f"state dict entries {', '.join(map(repr, keys))}",
                              "parts of a linear layer with a 2-D weight", "no weight beside them")
        if w.ndim != 2 and not (has_conv and w.ndim == 4):
            raise FormatError(path, f"state dict entry {name!r}", "a 2-D linear weight (out, in)" + (
                              " or a 4-D conv weight (out, in/group, kh, kw)" if has_conv else ""),
                              f"shape {tuple(w.shape)}" + (" (a convolution?)" if w.ndim > 2 else
                                                           " (a normalisation or embedding layer?)"))
        unknown = set(tensors) - set(_SUFFIXES)
        if unknown:
            raise FormatError(path, f"state dict layer {prefix!r}", "entries " + ", ".join(_SUFFIXES),
                              ", ".join(sorted(unknown)))
    return groups


def _is_bn(t: dict) -> bool:
    return "running_mean" in t and "running_var" in t and set(t) <= {"weight", "bias", *_BN}


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


def _activations(activations, n: int):
    acts = list(activations) if activations is not None else ["relu"] * (n - 1) + ["identity"]
    if len(acts) != n or any(a not in ACTIVATIONS for a in acts):
        raise ValueError(f"activations: expected {n} names from {', '.join(sorted(ACTIVATIONS))}, got {acts}")
    return acts


def _announce(path, assumed: list[str]) -> None:
    warnings.warn(AssumptionWarning(f"{path}: no topology stored; assumed " + "; ".join(assumed)), stacklevel=4)


def network_from_tensors(state: dict, path, *, activations=None, source_format: str, order: str,
                         extra_meta: dict | None = None):
    """The chain the named tensors ``state`` (in layer order) can be, and what was assumed.

    ``order`` says where the layer order came from (recorded in ``metadata["assumed"]``).
    """
    path = Path(path)
    groups = _group(state, path)
    layers = [p for p, t in groups.items() if not _is_bn(t)]
    if not layers:
        raise FormatError(path, "state dict", "at least one 2-D '<layer>.weight' tensor", f"keys {sorted(state)[:8]}")
    acts = _activations(activations, len(layers))
    given = activations is not None
    assumed = [f"layer order = {order}",
               "activations " + (f"as given: {', '.join(acts)}" if given else
                                 "relu between layers, identity after the last (a state dict stores none)")]
    meta = {"torch": {"layers": layers, "activations": acts,
                      "activations_source": "given" if given else
                      "assumed (a state dict stores no activations): relu hidden, identity output"}}
    if any(t.get("weight", t.get("weight_orig")).ndim == 4 for t in groups.values()):
        return _conv_chain(groups, acts, given, path, source_format, assumed, {**meta, **(extra_meta or {})})
    chain = Chain(None, path, "input", None)
    for prefix, act in zip(layers, acts):
        weight, mask, bias = _layer_arrays(prefix, groups[prefix], path)
        if 0 in weight.shape:                # units without a stored value: nothing to connect, memory per unit
            raise FormatError(path, f"state dict layer {prefix!r}", "a weight with at least one input and one output",
                              f"shape {tuple(weight.shape)}")
        w = dense_to_csr(weight) if mask is None else _masked_csr(weight, mask)
        try:
            chain.start_layer(w, bias, f"state dict layer {prefix!r}")
        except FormatError as err:
            _refuse(path, err.place, err.expected, err.found + " (the shapes do not chain)")
        if act != "identity":
            chain.activate(act, 0.01, f"state dict layer {prefix!r}")
    chain.finish()
    meta = {**meta, **(extra_meta or {}), "assumed": assumed}
    _announce(path, assumed)
    return LayeredNetwork(chain.layers(), metadata=meta, source=str(path), source_format=source_format)


def _conv_chain(groups: dict, acts, given: bool, path: Path, source_format: str, assumed: list, meta: dict):
    from modgraph.dag_builder import DagBuilder

    chain = []                                 # [prefix, tensors, BN prefix or None, BN tensors or None]
    for prefix, tensors in groups.items():
        if not _is_bn(tensors):
            chain.append([prefix, tensors, None, None])
        elif (not chain or chain[-1][2] is not None
              or chain[-1][1].get("weight_orig", chain[-1][1].get("weight")).ndim != 4):
            _refuse(path, f"state dict layer {prefix!r}", "BatchNorm statistics directly after a conv (in key order)",
                    "BatchNorm statistics " + ("before any layer" if not chain else "after a Linear layer or another "
                                               "BatchNorm"))
        else:
            chain[-1][2:] = [prefix, tensors]
    w0 = chain[0][1].get("weight_orig", chain[0][1].get("weight"))
    if w0.ndim != 4:
        _refuse(path, f"state dict layer {chain[0][0]!r}", "convs first, then Linear layers",
                f"a Linear layer before the convs (weight shape {tuple(w0.shape)})")
    spatial, note = _spatial(chain, path)
    b = DagBuilder(source=str(path))
    t = b.input("input", channels=w0.shape[1], spatial=spatial)
    feats = None
    for k, (prefix, tensors, bn_prefix, bn) in enumerate(chain):
        place = f"state dict layer {prefix!r}"
        weight, mask, bias = _layer_arrays(prefix, tensors, path)
        if mask is not None:
            weight = weight * mask
        if weight.ndim == 4:
            if t.spatial is None:
                _refuse(path, place, "convs only before the Linear layers (a chain)",
                        f"a conv (weight shape {tuple(weight.shape)}) after a Linear layer")
            per = weight.shape[1]
            one = weight.shape[2:] == (1, 1)               # a 1x1 conv reading part of the channels: a shortcut
            if (per == 0 or t.n_channels % per or weight.shape[0] % (t.n_channels // per)
                    or (one and per != t.n_channels)):
                _refuse(path, place, f"a conv reading the {t.n_channels} channels of the layer before it",
                        f"weight shape {tuple(weight.shape)} ({per} input channels per group"
                        + (", a 1x1 conv: a shortcut beside the chain?)" if one else ")"))
            kh, kw = weight.shape[2:]
            t = b.conv(prefix, t, weight, bias, pads=((kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2),
                       group=t.n_channels // per)
            if bn is not None:
                t = _bn(b, t, bn, bn_prefix, path, prefix)
        else:
            if t.spatial is not None:
                feats = t.n_channels * t.spatial[0] * t.spatial[1]
                t = b.flatten(t, order="CHW")
            if weight.shape[1] != feats:
                _refuse(path, place, f"a Linear layer reading the {feats} features of the layer before it",
                        f"weight shape {tuple(weight.shape)} (the shapes do not chain)")
            t = b.dense(prefix, t, weight, bias)
            feats = weight.shape[0]
        t = b.activation(t, acts[k], alpha=0.01, assumed=not given)
    assumed = assumed + [
        "conv geometry: stride 1, dilation 1, 'same' padding, no pooling (none of it is stored); group = input "
        "channels / the kernel's second axis", note,
        f"BatchNorm directly after its conv, before the activation, eps {_BN_EPS} (PyTorch's default)"]
    meta = {**meta, "assumed": assumed}
    _announce(path, assumed)
    return b.build([t], metadata=meta, source_format=source_format)


def _spatial(weighted, path):
    """The input H x W: S = in_features of the first Linear / channels of the last conv (exact division only)."""
    convs = [(e[0], e[1]) for e in weighted if e[1].get("weight_orig", e[1].get("weight")).ndim == 4]
    lin = next(((e[0], e[1]) for e in weighted if e[1].get("weight_orig", e[1].get("weight")).ndim == 2), None)
    if lin is None:
        return (1, 1), "spatial size unknown (no Linear layer after the convs): a 1 x 1 input assumed"
    p_conv, t_conv = convs[-1]
    c = t_conv.get("weight_orig", t_conv.get("weight")).shape[0]
    f = lin[1].get("weight_orig", lin[1].get("weight")).shape[1]
    if f % c:
        _refuse(path, f"state dict layer {lin[0]!r}", f"in_features a multiple of the {c} channels of conv "
                f"{p_conv!r} (C x H x W after a flatten)", f"in_features {f}, which {c} does not divide: the spatial "
                "size before the flatten cannot be inferred")
    s = f // c
    r = math.isqrt(s)
    h, w = (r, r) if r * r == s else (1, s)
    return (h, w), (f"spatial size S = in_features of {lin[0]!r} / channels of {p_conv!r} = {f} / {c} = {s}, "
                    f"laid out as H x W = {h} x {w}; the flatten is in C, H, W order (PyTorch)")


def _bn(b, t, tensors, prefix, path, conv):
    place = f"state dict layer {prefix!r}"
    c = t.n_channels
    n = tuple(np.shape(tensors["running_mean"]))
    if n != (c,):
        _refuse(path, place, f"BatchNorm statistics of the width of conv {conv!r} ({c} channels)",
                f"running_mean of shape {n}: a BatchNorm between convs of different widths")
    gamma, beta = tensors.get("weight", np.ones(c)), tensors.get("bias", np.zeros(c))
    var = np.asarray(tensors["running_var"], np.float64)
    if any(np.shape(a) != (c,) for a in (gamma, beta, var)) or np.any(var + _BN_EPS <= 0):
        raise FormatError(path, place, f"weight, bias, running_var of shape ({c},), variances + eps > 0",
                          f"shapes {[tuple(np.shape(a)) for a in (gamma, beta, var)]}")
    return b.batch_norm(t, gamma, beta, tensors["running_mean"], var, eps=_BN_EPS, name=prefix)
