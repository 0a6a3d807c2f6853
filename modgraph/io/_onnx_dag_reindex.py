"""Re-index and layout handlers of the ONNX DAG reader: channel Concat/Split/Slice/Gather, Pad,
Flatten/Reshape/Squeeze and the NCHW <-> NHWC Transposes (see ``_onnx_dag_ops``)."""
from __future__ import annotations

import math

import numpy as np

from modgraph.io._onnx_fold import as_str, attrs

__all__ = ["REINDEX_HANDLERS"]


# -- re-index --------------------------------------------------------------------------------------
def _channel_axis(r, v, axis, place, op):
    if int(axis) % v.rank != v.channel_axis:
        raise r.fail(place, f"{op} on the channel axis ({v.channel_axis} of the {v.layout} data tensor)",
                     f"axis={axis}")


def _concat(r, node, place):
    a = attrs(node)
    if not all(i in r.data for i in node.input):
        raise r.fail(place, "a Concat of data tensors only", "a constant input among data inputs")
    vs = [r.val(i, place) for i in node.input]
    if any(v.layout != vs[0].layout for v in vs):
        raise r.fail(place, "a Concat of tensors of one layout", ", ".join(v.layout for v in vs))
    _channel_axis(r, vs[0], a.get("axis", 1), place, "Concat")
    r.set(node.output[0], r.b.concat([v.t for v in vs]), vs[0].layout)


def _split(r, node, place):
    a, v = attrs(node), r.val(node.input[0], place)
    _channel_axis(r, v, a.get("axis", 0), place, "Split")
    n, k = v.t.n_channels, len(node.output)
    sizes = (a["split"] if "split" in a else r.const(node.input[1], place).tolist()
             if len(node.input) > 1 and node.input[1] else [-(-n // k)] * (k - 1) + [n - -(-n // k) * (k - 1)])
    for out, t in zip(node.output, r.b.split(v.t, [int(s) for s in sizes])):
        r.set(out, t, v.layout)


def _slice(r, node, place):
    v = r.val(node.input[0], place)
    a = attrs(node)
    if "starts" in a:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        args = [r.const(i, place).tolist() if i else None for i in list(node.input[1:]) + [None] * 4]
        starts, ends, axes, steps = args[:4]
    axes = list(range(len(starts))) if axes is None else axes
    steps = steps or [1] * len(starts)
    shape = r.shape_of(v)
    start, stop = 0, v.t.n_channels
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax, dim = int(ax) % v.rank, shape[int(ax) % v.rank]
        lo, hi = (max(0, min(dim, x + dim if x < 0 else x)) for x in (int(s), int(e)))
        if ax != v.channel_axis and (lo, hi, st) != (0, dim, 1) or st != 1:
            raise r.fail(place, "a Slice of data on the channel axis with step 1", f"axis {ax}: {s}:{e}:{st}")
        if ax == v.channel_axis:
            start, stop = lo, hi
    r.set(node.output[0], r.b.slice(v.t, start, stop), v.layout)


def _gather(r, node, place):
    v, idx = r.val(node.input[0], place), r.const(node.input[1], place)
    _channel_axis(r, v, attrs(node).get("axis", 0), place, "Gather")
    n = v.t.n_channels
    if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.size == 0 or np.any((idx < -n) | (idx >= n)):
        raise r.fail(place, f"1-D integer channel indices in [-{n}, {n})", f"indices of shape {idx.shape}")
    idx = idx % n
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    parts = [r.b.slice(v.t, int(run[0]), int(run[-1]) + 1) for run in np.split(idx, cuts)]
    r.set(node.output[0], parts[0] if len(parts) == 1 else r.b.concat(parts), v.layout)


def _pad(r, node, place):
    a, v = attrs(node), r.val(node.input[0], place)
    mode = as_str(a.get("mode", "constant"))
    pads = (a["pads"] if "pads" in a else r.const(node.input[1], place).astype(np.int64).tolist())
    value = (float(a.get("value", 0.0)) if len(node.input) < 3 or not node.input[2]
             else float(r.const(node.input[2], place).reshape(-1)[0]))
    axes = r.const(node.input[3], place).tolist() if len(node.input) > 3 and node.input[3] else range(v.rank)
    full = [0] * (2 * v.rank)
    for j, ax in enumerate(axes):
        full[int(ax) % v.rank], full[v.rank + int(ax) % v.rank] = int(pads[j]), int(pads[len(axes) + j])
    if v.layout == "NC" or len(pads) != 2 * len(axes) or min(full) < 0 or full[0] or full[v.rank]:
        raise r.fail(place, "non-negative pads of a 4-D tensor on the channel and spatial axes only",
                     f"pads {list(pads)} of a {v.layout} tensor")
    h, w, c = (1, 2, 3) if v.layout == "NHWC" else (2, 3, 1)
    t = v.t
    if full[c] or full[4 + c]:
        if mode != "constant" or value != 0.0:
            raise r.fail(place, "zero constant padding of channels", f"mode {mode!r}, value {value}")
        t = r.b.pad_channels(t, full[c], full[4 + c])
    if full[h] or full[w] or full[4 + h] or full[4 + w]:
        t = r.b.pad(t, (full[h], full[w], full[4 + h], full[4 + w]), value=value, mode=mode)
    r.set(node.output[0], t, v.layout)


# -- layout and flatten -----------------------------------------------------------------------------
def _flatten_to(r, node, v, place):
    if v.layout == "NC":
        r.set(node.output[0], v.t, "NC")
    else:
        r.set(node.output[0], r.b.flatten(v.t, order="HWC" if v.layout == "NHWC" else "CHW"), "NC")


def _flatten(r, node, place):
    v = r.val(node.input[0], place)
    if attrs(node).get("axis", 1) != 1:
        raise r.fail(place, "Flatten(axis=1) (keeps the batch dimension)", f"axis={attrs(node)['axis']}")
    _flatten_to(r, node, v, place)


def _reshape(r, node, place):
    v = r.val(node.input[0], place)
    shape = r.shape_of(v)
    target = [int(x) for x in r.const(node.input[1], place).tolist()]
    target = [shape[i] if x == 0 and i < len(shape) else x for i, x in enumerate(target)]
    features = math.prod(shape[1:])
    if len(target) == 2 and target[0] in (-1, shape[0]) and target[1] in (-1, features):
        _flatten_to(r, node, v, place)
    elif target == list(shape) or (len(target) == len(shape) and target[1:] == list(shape[1:]) and target[0] == -1):
        r.set(node.output[0], v.t, v.layout)
    else:
        raise r.fail(place, f"a Reshape of the ({', '.join(map(str, shape))}) data tensor to (n, {features}) "
                     "or to its own shape", f"target shape {target}")


def _squeeze(r, node, place):
    a, v = attrs(node), r.val(node.input[0], place)
    axes = a.get("axes") if "axes" in a else (r.const(node.input[1], place).tolist()
                                             if len(node.input) > 1 and node.input[1] else None)
    spatial = [1, 2] if v.layout == "NHWC" else [2, 3]
    if v.layout == "NC" or v.t.spatial != (1, 1) or axes is None or sorted(int(x) % 4 for x in axes) != spatial:
        raise r.fail(place, "a Squeeze of the 1 x 1 spatial axes of a 4-D tensor", f"axes {axes} of a "
                     f"{v.layout} tensor with spatial size {v.t.spatial}")
    _flatten_to(r, node, v, place)


def _transpose(r, node, place):
    v, perm = r.val(node.input[0], place), list(attrs(node).get("perm", []))
    moves = {("NHWC", (0, 3, 1, 2)): "NCHW", ("NCHW", (0, 2, 3, 1)): "NHWC", ("NC", (0, 1)): "NC",
             ("NCHW", (0, 1, 2, 3)): "NCHW", ("NHWC", (0, 1, 2, 3)): "NHWC"}
    to = moves.get((v.layout, tuple(perm)))
    if to is None:
        raise r.fail(place, "a Transpose between NCHW and NHWC (perm [0,3,1,2] or [0,2,3,1])",
                     f"perm {perm} of a {v.layout} tensor")
    r.set(node.output[0], v.t, to)


#: op type -> handler(r, node, place)
REINDEX_HANDLERS = {"Concat": _concat, "Split": _split, "Slice": _slice, "Gather": _gather, "Pad": _pad,
                    "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze, "Transpose": _transpose}
