"""numpy kernels of the DAG forward pass: convolution, transposed convolution, pooling, padding.

Tensors are NCHW. ``pads`` is always ``(h_begin, w_begin, h_end, w_end)`` (ONNX order). Each
kernel loops over the kh x kw kernel positions and contracts one strided view of the input per
position (no im2col buffer), so memory stays at the size of the output plus one view.

Examples
--------
>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> conv2d(x, np.ones((1, 1, 2, 2)), None, strides=(2, 2)).tolist()
[[[[10.0, 18.0], [42.0, 50.0]]]]
>>> pool2d(x, (2, 2), strides=(2, 2), mode="max").tolist()
[[[[5.0, 7.0], [13.0, 15.0]]]]
"""
from __future__ import annotations

import numpy as np

__all__ = ["conv2d", "conv_transpose2d", "pool2d", "pad2d", "conv_out_size", "conv_transpose_out_size",
           "pool_out_size"]


def conv_out_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int) -> int:
    """Output length of a convolution or pooling along one axis (floor mode)."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def pool_out_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int,
                  ceil_mode: bool) -> int:
    """Output length of a pooling along one axis; in ceil mode the last window must start inside
    the input or its begin padding (the PyTorch and ONNX rule)."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - 1 if (out - 1) * stride >= size + pad_begin else out


def conv_transpose_out_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                            dilation: int, output_padding: int) -> int:
    """Output length of a transposed convolution along one axis (PyTorch / ONNX formula)."""
    return (size - 1) * stride - pad_begin - pad_end + dilation * (kernel - 1) + output_padding + 1


def _window(a: np.ndarray, i: int, j: int, n_h: int, n_w: int, strides, dilations) -> np.ndarray:
    """The view of the last two axes of ``a`` read by kernel position (i, j): (..., n_h, n_w)."""
    (sh, sw), (dh, dw) = strides, dilations
    return a[..., i * dh: i * dh + sh * (n_h - 1) + 1: sh, j * dw: j * dw + sw * (n_w - 1) + 1: sw]


def pad2d(x: np.ndarray, pads, *, value: float = 0.0, mode: str = "constant") -> np.ndarray:
    """Pad the spatial axes: ``mode`` is ``constant`` (with ``value``), ``reflect`` or ``edge``."""
    widths = ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3]))
    if mode == "constant":
        return np.pad(x, widths, constant_values=value)
    return np.pad(x, widths, mode=mode)


def conv2d(x, weight, bias, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group: int = 1):
    """2-D convolution (cross-correlation, as in PyTorch and ONNX).

    ``x`` (n, C, H, W), ``weight`` (O, C/group, kh, kw), ``bias`` (O,) or None.
    """
    n, c, _, _ = x.shape
    o, cg, kh, kw = weight.shape
    xp = pad2d(x, pads)
    ho = conv_out_size(x.shape[2], kh, strides[0], pads[0], pads[2], dilations[0])
    wo = conv_out_size(x.shape[3], kw, strides[1], pads[1], pads[3], dilations[1])
    xg = xp.reshape(n, group, cg, xp.shape[2], xp.shape[3])
    wg = weight.reshape(group, o // group, cg, kh, kw)
    out = np.zeros((n, group, o // group, ho, wo), dtype=np.result_type(x, weight))
    for i in range(kh):
        for j in range(kw):
            view = _window(xg, i, j, ho, wo, strides, dilations)          # (n, g, cg, ho, wo)
            out += np.einsum("ngchw,goc->ngohw", view, wg[:, :, :, i, j], optimize=True)
    out = out.reshape(n, o, ho, wo)
    return out if bias is None else out + bias[None, :, None, None]


def conv_transpose2d(x, weight, bias, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
                     group: int = 1, output_padding=(0, 0)):
    """2-D transposed convolution; ``weight`` is (C, O/group, kh, kw) as in PyTorch and ONNX."""
    n, c, h, w = x.shape
    _, og, kh, kw = weight.shape
    cg = c // group
    hf = (h - 1) * strides[0] + dilations[0] * (kh - 1) + 1 + output_padding[0]
    wf = (w - 1) * strides[1] + dilations[1] * (kw - 1) + 1 + output_padding[1]
    full = np.zeros((n, group, og, hf, wf), dtype=np.result_type(x, weight))
    xg = x.reshape(n, group, cg, h, w)
    wg = weight.reshape(group, cg, og, kh, kw)
    for i in range(kh):
        for j in range(kw):
            view = _window(full, i, j, h, w, strides, dilations)          # (n, g, og, h, w), writable
            view += np.einsum("ngchw,gco->ngohw", xg, wg[:, :, :, i, j], optimize=True)
    out = full.reshape(n, group * og, hf, wf)[:, :, pads[0]: hf - pads[2], pads[1]: wf - pads[3]]
    return out if bias is None else out + bias[None, :, None, None]


def pool2d(x, kernel, *, strides=None, pads=(0, 0, 0, 0), dilations=(1, 1), mode: str = "max",
           count_include_pad: bool = False, ceil_mode: bool = False):
    """Max or average pooling. Average excludes padding unless ``count_include_pad``; windows that
    run past the padding in ``ceil_mode`` never count the overflow (as PyTorch does)."""
    kh, kw = kernel
    strides = tuple(kernel) if strides is None else strides
    ho = pool_out_size(x.shape[2], kh, strides[0], pads[0], pads[2], dilations[0], ceil_mode)
    wo = pool_out_size(x.shape[3], kw, strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    over = (max(0, (ho - 1) * strides[0] + dilations[0] * (kh - 1) + 1 - (x.shape[2] + pads[0] + pads[2])),
            max(0, (wo - 1) * strides[1] + dilations[1] * (kw - 1) + 1 - (x.shape[3] + pads[1] + pads[3])))
    declared, pads = pads, (pads[0], pads[1], pads[2] + over[0], pads[3] + over[1])
    if mode == "max":
        xp = pad2d(x, pads, value=-np.inf)
        out = np.full(x.shape[:2] + (ho, wo), -np.inf, dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                np.maximum(out, _window(xp, i, j, ho, wo, strides, dilations), out=out)
        return out
    xp = pad2d(x, pads)
    out = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += _window(xp, i, j, ho, wo, strides, dilations)
    if count_include_pad and over == (0, 0):
        return out / (kh * kw)
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    if count_include_pad:                               # padding counts, the ceil-mode overflow does not
        ones = pad2d(ones, declared, value=1.0)
        ones = pad2d(ones, (0, 0) + over)
    else:
        ones = pad2d(ones, pads)
    count = np.zeros((1, 1, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            count += _window(ones, i, j, ho, wo, strides, dilations)
    return out / count
