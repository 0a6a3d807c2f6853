"""One small handler per data op of the ONNX DAG reader (design §3 op classes).

A handler gets ``(r, node, place)``: the walk's state (``onnx_dag.DagReader``: ``val``,
``const``, ``set``, the builder ``b``), the node and its printable place; it adds the node's
op to the builder and records its output tensors with their layout.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from onnx import TensorProto

from modgraph.io._onnx_dag_reindex import REINDEX_HANDLERS
from modgraph.io._onnx_fold import as_str, attrs
from modgraph.io._onnx_graph import node_place

__all__ = ["DAG_HANDLERS", "HEAD_OPS"]

#: Classifier-head ops: the DAG's outputs are their inputs.
HEAD_OPS = frozenset({"ArgMax", "ArgMin", "TopK", "ZipMap", "ArrayFeatureExtractor"})
_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


def _s(v) -> str:
    return as_str(v)


def _image(r, name, place, layout="NCHW"):
    v = r.val(name, place)
    if v.layout != layout:
        raise r.fail(place, f"a {layout} image tensor as input", f"a {v.layout} tensor {name!r}")
    return v


def _matrix(r, name, place):
    v = r.val(name, place)
    if v.layout != "NC":
        raise r.fail(place, "a 2-D (n, features) input (flatten a 4-D tensor first)", f"a {v.layout} tensor")
    return v


def _weight(r, name, place, ndim, what):
    w = r.const(name, place)
    if w.ndim != ndim:
        raise r.fail(f"{place} input {name!r}", what, f"shape {tuple(w.shape)}")
    return w if w.dtype.kind == "f" else w.astype(np.float64)


def per_channel(c, rank, axis, n):
    """A constant broadcast against a data tensor as one value per channel, or None."""
    c = np.asarray(c)
    if c.ndim > rank:
        return None
    cs = (1,) * (rank - c.ndim) + c.shape
    if any(cs[i] != 1 for i in range(rank) if i != axis) or cs[axis] not in (1, n):
        return None
    flat = c.reshape(-1).astype(np.float64)
    return np.full(n, flat[0]) if flat.size == 1 else flat


def _vector_len(r, v):
    return r.b.n_features(v.t) if v.layout == "NC" else v.t.n_channels


def _bias_after(r, node, n, layout):
    """A constant per-channel Add right after a bias-less weighted op becomes its bias."""
    out = node.output[0]
    m = r.single_use(out)
    if m is None or r.nodes[m].op_type != "Add" or m in r.skip or m in r.act:
        return None, out
    c_name = r.other(r.nodes[m], out)
    if c_name is None or c_name in r.data:
        return None, out
    vec = per_channel(r.const(c_name, node_place(r.nodes[m], m)), 2 if layout == "NC" else 4, 1, n)
    if vec is None:
        return None, out
    r.skip.add(m)
    return vec, r.nodes[m].output[0]


def _auto_pads(r, a, spatial, kernel, strides, dilations, place):
    auto = _s(a.get("auto_pad", "NOTSET"))
    if auto == "NOTSET":
        pads = tuple(int(p) for p in a.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4:
            raise r.fail(place, "4 pads (h_begin, w_begin, h_end, w_end)", f"pads={list(pads)}")
        return pads
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise r.fail(place, "auto_pad NOTSET, VALID, SAME_UPPER or SAME_LOWER", repr(auto))
    begin, end = [], []
    for i in range(2):
        out = math.ceil(spatial[i] / strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial[i])
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return (begin[0], begin[1], end[0], end[1])


def _window(r, node, a, v, kernel, place):
    if len(kernel) != 2:
        raise r.fail(place, "a 2-D kernel", f"kernel_shape {list(kernel)}")
    strides = tuple(int(s) for s in a.get("strides", (1, 1)))
    dil = tuple(int(d) for d in a.get("dilations", (1, 1)))
    return strides, dil, _auto_pads(r, a, v.t.spatial, kernel, strides, dil, place)


# -- weighted ------------------------------------------------------------------------------------
def _conv(r, node, place):
    a, v = attrs(node), _image(r, node.input[0], place)
    w = _weight(r, node.input[1], place, 4, "a 2-D convolution weight (O, C/group, kh, kw)")
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != w.shape[2:]:
        raise r.fail(place, f"kernel_shape equal to the weight's {w.shape[2:]}", str(a["kernel_shape"]))
    strides, dil, pads = _window(r, node, a, v, w.shape[2:], place)
    bias, out = ((r.const(node.input[2], place), node.output[0]) if len(node.input) > 2 and node.input[2]
                 else _bias_after(r, node, w.shape[0], "NCHW"))
    t = r.b.conv(r.group_name(node), v.t, w, bias, strides=strides, pads=pads, dilations=dil,
                 group=int(a.get("group", 1)))
    r.set(out, t, "NCHW")


def _conv_transpose(r, node, place):
    a, v = attrs(node), _image(r, node.input[0], place)
    w = _weight(r, node.input[1], place, 4, "a 2-D transposed-convolution weight (C, O/group, kh, kw)")
    if "output_shape" in a or _s(a.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        raise r.fail(place, "explicit pads (no output_shape, auto_pad NOTSET or VALID)",
                     f"output_shape={a.get('output_shape')}, auto_pad={_s(a.get('auto_pad', 'NOTSET'))}")
    strides, dil, pads = _window(r, node, a, v, w.shape[2:], place)
    group = int(a.get("group", 1))
    bias = r.const(node.input[2], place) if len(node.input) > 2 and node.input[2] else None
    t = r.b.conv_transpose(r.group_name(node), v.t, w, bias, strides=strides, pads=pads, dilations=dil,
                           group=group, output_padding=tuple(a.get("output_padding", (0, 0))))
    r.set(node.output[0], t, "NCHW")


def _dense(r, node, place, w, bias_name=None, beta=1.0):
    v = _matrix(r, node.input[0], place)
    out = node.output[0]
    if bias_name:
        c = r.const(bias_name, place) * beta
        bias = per_channel(c, 2, 1, w.shape[0])
        if bias is None:
            raise r.fail(f"{place} input C {bias_name!r}", f"a bias of 1 or {w.shape[0]} values", f"shape {c.shape}")
    else:
        bias, out = _bias_after(r, node, w.shape[0], "NC")
    r.set(out, r.b.dense(r.group_name(node), v.t, w, bias), "NC")


def _matrix_weight(r, name, place, what):
    """A dense layer's 2-D weight: a CSR matrix (exactly its stored entries) for a sparse initializer,
    else as :func:`_weight`."""
    if name and name not in r.data and name in r.consts:
        w = r.consts.matrix(name, f"{place} input {name!r}")
        if sp.issparse(w):
            return w if w.dtype.kind == "f" else w.astype(np.float64)
    return _weight(r, name, place, 2, what)


def _gemm(r, node, place):
    a = attrs(node)
    if a.get("transA", 0):
        raise r.fail(place, "transA=0 (rows of the flowing value are samples)", "transA=1")
    b = _matrix_weight(r, node.input[1], place, "a 2-D constant B")
    w = b if a.get("transB", 0) else b.T
    if a.get("alpha", 1.0) != 1.0:
        w = w * w.dtype.type(a["alpha"])
    c = node.input[2] if len(node.input) > 2 and node.input[2] else None
    _dense(r, node, place, w, c, a.get("beta", 1.0))


def _matmul(r, node, place):
    if node.input[1] in r.data:
        raise r.fail(place, "MatMul(data, constant weight (in, out))", "two data operands")
    _dense(r, node, place, _matrix_weight(r, node.input[1], place, "a 2-D constant weight (in, out)").T)


# -- pass-through ------------------------------------------------------------------------------
def _same(r, node, place):
    v = r.val(node.input[0], place)
    if node.op_type == "Cast" and attrs(node).get("to") not in _FLOAT_TYPES:
        raise r.fail(place, "a Cast of data to a floating point type", f"to={attrs(node).get('to')}")
    if node.op_type == "Dropout" and len(node.output) > 1 and r.consumers.get(node.output[1]):
        raise r.fail(place, "a Dropout whose mask output is unused", "a used mask")
    r.set(node.output[0], v.t, v.layout)


def _activation(name, default_alpha=0.01):
    def handler(r, node, place):
        a, v = attrs(node), r.val(node.input[0], place)
        if name in ("softmax", "log_softmax") and (v.layout != "NC" or a.get("axis", -1) not in (-1, 1)):
            raise r.fail(place, "a softmax over the features of a 2-D tensor (axis -1 or 1)",
                         f"a {v.layout} tensor, axis={a.get('axis', -1)}")
        if name == "gelu" and _s(a.get("approximate", "none")) != "none":
            raise r.fail(place, "Gelu(approximate='none')", f"approximate={_s(a['approximate'])!r}")
        r.set(node.output[0], r.b.activation(v.t, name, alpha=a.get("alpha", default_alpha)), v.layout)
    return handler


def _clip(r, node, place):
    """Clip(0, inf) is ReLU, Clip(0, 6) ReLU6 (MobileNet); other bounds are refused."""
    a, v = attrs(node), r.val(node.input[0], place)
    lo, hi = a.get("min"), a.get("max")
    if len(node.input) > 1 and node.input[1]:
        lo = float(r.const(node.input[1], place).reshape(-1)[0])
    if len(node.input) > 2 and node.input[2]:
        hi = float(r.const(node.input[2], place).reshape(-1)[0])
    name = {(0.0, None): "relu", (0.0, float("inf")): "relu", (0.0, 6.0): "relu6"}.get(
        (None if lo is None else float(lo), None if hi is None else float(hi)))
    if name is None:
        raise r.fail(place, "Clip(0, 6) (ReLU6) or Clip(0, inf) (ReLU)", f"Clip({lo}, {hi})")
    r.set(node.output[0], r.b.activation(v.t, name), v.layout)


def _pool(kind):
    def handler(r, node, place):
        a, v = attrs(node), _image(r, node.input[0], place)
        kernel = tuple(int(k) for k in a.get("kernel_shape", ()))
        strides, dil, pads = _window(r, node, a, v, kernel, place)
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            if len(node.output) > 1 and node.output[1] and r.consumers.get(node.output[1]):
                raise r.fail(place, "a MaxPool whose Indices output is unused", "a used Indices output")
            t = r.b.max_pool(v.t, kernel, strides=strides, pads=pads, dilations=dil, ceil_mode=ceil)
        else:
            if dil != (1, 1):
                raise r.fail(place, "an AveragePool without dilations", f"dilations={list(dil)}")
            t = r.b.avg_pool(v.t, kernel, strides=strides, pads=pads, ceil_mode=ceil,
                             count_include_pad=bool(a.get("count_include_pad", 0)))
        r.set(node.output[0], t, "NCHW")
    return handler


def _global(kind):
    def handler(r, node, place):
        v = _image(r, node.input[0], place)
        r.set(node.output[0], (r.b.global_max_pool if kind == "max" else r.b.global_avg_pool)(v.t), "NCHW")
    return handler


def _reduce(kind):
    """ReduceMean/ReduceMax over the spatial axes (the dynamo exporter's adaptive pool)."""
    def handler(r, node, place):
        a, v = attrs(node), r.val(node.input[0], place)
        axes = a.get("axes") if "axes" in a else (r.const(node.input[1], place).tolist()
                                                 if len(node.input) > 1 and node.input[1] else None)
        spatial = {1, 2} if v.layout == "NHWC" else {2, 3}
        if v.layout == "NC" or axes is None or {int(x) % 4 for x in axes} != spatial:
            raise r.fail(place, f"a reduction over the spatial axes {sorted(spatial)} of a 4-D tensor",
                         f"axes {axes} of a {v.layout} tensor")
        t = (r.b.global_max_pool if kind == "max" else r.b.global_avg_pool)(v.t)
        if a.get("keepdims", 1):
            r.set(node.output[0], t, v.layout)
        else:
            r.set(node.output[0], r.b.flatten(t), "NC")
    return handler


# -- per-channel gain and merges -----------------------------------------------------------------
def _batch_norm(r, node, place):
    a, v = attrs(node), r.val(node.input[0], place)
    if v.layout == "NHWC" or a.get("training_mode", 0) or len(node.input) != 5:
        raise r.fail(place, "inference BatchNormalization(x, scale, B, mean, var) on an NCHW or 2-D tensor",
                     f"a {v.layout} tensor, training_mode={a.get('training_mode', 0)}, {len(node.input)} inputs")
    gamma, beta, mean, var = (r.const(i, place).astype(np.float64) for i in node.input[1:])
    eps = float(a.get("epsilon", 1e-5))
    if np.any(var + eps <= 0):
        raise r.fail(place, "variances with var + epsilon > 0", "a non-positive value")
    r.set(node.output[0], r.b.batch_norm(v.t, gamma, beta, mean, var, eps=eps, name=r.group_name(node)), v.layout)


def _binary(op):
    def handler(r, node, place):
        ins = list(node.input)
        if len(ins) != 2:
            raise r.fail(place, f"{op} with two inputs", f"{len(ins)} inputs")
        if all(i in r.data for i in ins):
            va, vb = r.val(ins[0], place), r.val(ins[1], place)
            if va.layout != vb.layout or op not in ("Add", "Mul"):
                raise r.fail(place, "Add or Mul of two data tensors of one layout",
                             f"{op} of a {va.layout} and a {vb.layout} tensor")
            t = (r.b.add(r.group_name(node), [va.t, vb.t]) if op == "Add"
                 else r.b.mul(r.group_name(node), va.t, vb.t))
            r.set(node.output[0], t, va.layout)
            return
        k = 0 if ins[0] in r.data else 1
        v, c = r.val(ins[k], place), r.const(ins[1 - k], place)
        n = _vector_len(r, v)
        vec = per_channel(c, v.rank, v.channel_axis, n)
        if vec is None:
            raise r.fail(f"{place} input {ins[1 - k]!r}", f"a scalar or per-channel constant ({n} channels, "
                         f"axis {v.channel_axis} of the {v.layout} tensor)", f"shape {tuple(c.shape)}")
        one, zero = np.ones(n), np.zeros(n)
        if op == "Div" and (k == 1 or np.any(vec == 0)):
            raise r.fail(place, "Div(data, non-zero constant)", "a constant numerator" if k else "a zero divisor")
        scale, shift = {"Add": (one, vec), "Mul": (vec, zero), "Div": (1.0 / vec, zero),
                        "Sub": (one, -vec) if k == 0 else (-one, vec)}[op]
        r.set(node.output[0], r.b.affine(v.t, scale, shift, name=r.group_name(node)), v.layout)
    return handler


def _sum(r, node, place):
    vs = [r.val(i, place) for i in node.input]
    if len(vs) == 1:
        r.set(node.output[0], vs[0].t, vs[0].layout)
    elif any(v.layout != vs[0].layout for v in vs):
        raise r.fail(place, "a Sum of data tensors of one layout", ", ".join(v.layout for v in vs))
    else:
        r.set(node.output[0], r.b.add(r.group_name(node), [v.t for v in vs]), vs[0].layout)


#: op type -> handler(r, node, place) for ops with a data input.
DAG_HANDLERS = {
    "Conv": _conv, "ConvTranspose": _conv_transpose, "Gemm": _gemm, "MatMul": _matmul,
    "Identity": _same, "Dropout": _same, "Cast": _same,
    "Relu": _activation("relu"), "LeakyRelu": _activation("leaky_relu"), "Elu": _activation("elu", 1.0),
    "Sigmoid": _activation("sigmoid"), "Tanh": _activation("tanh"), "Gelu": _activation("gelu"),
    "Clip": _clip, "Softmax": _activation("softmax"), "LogSoftmax": _activation("log_softmax"),
    "MaxPool": _pool("max"), "AveragePool": _pool("avg"), "GlobalAveragePool": _global("avg"),
    "GlobalMaxPool": _global("max"), "ReduceMean": _reduce("avg"), "ReduceMax": _reduce("max"),
    "BatchNormalization": _batch_norm, "Add": _binary("Add"), "Sub": _binary("Sub"), "Mul": _binary("Mul"),
    "Div": _binary("Div"), "Sum": _sum, **REINDEX_HANDLERS,
}
