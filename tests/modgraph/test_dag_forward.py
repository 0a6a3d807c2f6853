"""Oracle: a DAG built through DagBuilder from a PyTorch module's own tensors computes what the module does."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modgraph.dag_builder import DagBuilder


def _np(t):
    return t.detach().numpy().astype(np.float64)


def _conv(b, name, x, m: nn.Conv2d):
    p = m.padding
    return b.conv(name, x, _np(m.weight), None if m.bias is None else _np(m.bias), strides=m.stride,
                  pads=(p[0], p[1], p[0], p[1]), dilations=m.dilation, group=m.groups)


def _bn(b, x, m: nn.BatchNorm2d):
    return b.batch_norm(x, _np(m.weight), _np(m.bias), _np(m.running_mean), _np(m.running_var), eps=m.eps)


def _randomise_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 2 - 0.5)   # some negative gains
                m.bias.copy_(torch.randn(m.num_features, generator=g))
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _check(model, net, shape, seed=0):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        want = model(x).double().numpy()
    got = net.forward(x.double().numpy())
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


class ResNetish(nn.Module):
    """Conv/BN/ReLU/MaxPool, residual Adds (plain, with BN after, with a 1x1 shortcut), GAP, Linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.c2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.bn_add = nn.BatchNorm2d(8)
        self.c3 = nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=1)
        self.short = nn.Conv2d(8, 16, 1, stride=2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        h = self.pool(torch.relu(self.bn1(self.c1(x))))
        h = torch.relu(self.bn_add(h + self.bn2(self.c2(h))))           # BN after the Add
        h = torch.relu(self.c3(h) + self.short(h))                       # 1x1 shortcut conv
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


def test_residual_cnn_matches_torch():
    torch.manual_seed(0)
    m = _randomise_bn(ResNetish(), 1)
    b = DagBuilder()
    x = b.input("input", channels=3, spatial=(12, 12))
    h = b.max_pool(b.activation(_bn(b, _conv(b, "c1", x, m.c1), m.bn1), "relu"), 2)
    h = b.activation(_bn(b, b.add("add1", [h, _bn(b, _conv(b, "c2", h, m.c2), m.bn2)]), m.bn_add), "relu")
    h = b.activation(b.add("add2", [_conv(b, "c3", h, m.c3), _conv(b, "short", h, m.short)]), "relu")
    out = b.dense("fc", b.flatten(b.global_avg_pool(h)), _np(m.fc.weight), _np(m.fc.bias))
    net = b.build(outputs=[out])
    _check(m, net, (4, 3, 12, 12))
    assert [g.stage for g in net.groups] == [0, 0, 1, 1, 2, 2, 2, 2]
    assert net.group("add2").depth == 5 and net.group("fc").kind == "output"


class Branchy(nn.Module):
    """Depthwise and grouped convs, AvgPool with padding, a channel Concat, flatten -> Linear."""

    def __init__(self, count_include_pad):
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.gc = nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=count_include_pad)
        self.fc = nn.Linear(10 * 4 * 4, 3)

    def forward(self, x):
        h = torch.cat([torch.tanh(self.dw(x)), self.gc(x)], dim=1)
        return self.fc(torch.flatten(self.avg(h), 1))


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_grouped_depthwise_concat_flatten_match_torch(count_include_pad):
    torch.manual_seed(2)
    m = Branchy(count_include_pad).eval()
    b = DagBuilder()
    x = b.input("input", channels=4, spatial=(8, 8))
    h = b.concat([b.activation(_conv(b, "dw", x, m.dw), "tanh"), _conv(b, "gc", x, m.gc)])
    h = b.avg_pool(h, 3, strides=2, pads=(1, 1, 1, 1), count_include_pad=count_include_pad)
    net = b.build(outputs=[b.dense("fc", b.flatten(h), _np(m.fc.weight), _np(m.fc.bias))])
    _check(m, net, (3, 4, 8, 8), seed=3)
    assert net.group("dw").activation == "tanh" and net.group("gc").activation == "identity"


class Decoder(nn.Module):
    """ConvTranspose (stride, padding, output_padding, groups), a Mul gate, a spatial pad."""

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.gate = nn.Conv2d(4, 6, 3, stride=1, padding=1)
        self.up2 = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1)

    def forward(self, x):
        a = self.up(x)                                                # (6, 10, 10)
        g = torch.sigmoid(self.up2(x))                                # (6, 10, 10)
        return nn.functional.pad(a * g, (1, 0, 2, 1)) + 0.0


def test_conv_transpose_and_gate_match_torch():
    torch.manual_seed(4)
    m = Decoder().eval()
    b = DagBuilder()
    x = b.input("input", channels=4, spatial=(5, 5))
    a = b.conv_transpose("up", x, _np(m.up.weight), _np(m.up.bias), strides=2, pads=(1, 1, 1, 1),
                         output_padding=1, group=2)
    g = b.activation(b.conv_transpose("up2", x, _np(m.up2.weight), _np(m.up2.bias), strides=2,
                                      pads=(1, 1, 1, 1)), "sigmoid")
    net = b.build(outputs=[b.pad(b.mul("gate", a, g), (2, 1, 1, 0))])
    _check(m, net, (2, 4, 5, 5), seed=5)
    assert net.group("gate").kind == "output" and net.group("up").stage == -1


def test_hwc_flatten_and_channel_pad_and_slice():
    """channels_last flatten order (Keras), zero channel Pad (option-A shortcut), Split."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(4, 2, 3, 3)), rng.normal(size=(3, 6 * 2 * 2))
    b = DagBuilder()
    x = b.input("input", channels=2, spatial=(4, 4))
    c = b.conv("c", x, w1, strides=2, pads=(1, 1, 1, 1))
    lo, hi = b.split(c, [1, 3])
    h = b.concat([hi, b.pad_channels(lo, 1, 1)])
    net = b.build(outputs=[b.dense("fc", b.flatten(h, order="HWC"), w2)])
    xin = rng.normal(size=(2, 2, 4, 4))
    ct = torch.nn.functional.conv2d(torch.tensor(xin), torch.tensor(w1), stride=2, padding=1).numpy()
    hh = np.concatenate([ct[:, 1:], np.zeros_like(ct[:, :1]), ct[:, :1], np.zeros_like(ct[:, :1])], axis=1)
    want = hh.transpose(0, 2, 3, 1).reshape(2, -1) @ w2.T
    np.testing.assert_allclose(net.forward(xin), want, atol=1e-10)


@pytest.mark.parametrize("count_include_pad", [False, True])
def test_ceil_mode_pools_match_torch(count_include_pad):
    x = torch.randn(2, 3, 7, 8, generator=torch.Generator().manual_seed(6))
    mp = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    ap = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=count_include_pad)
    b = DagBuilder()
    t = b.input("input", channels=3, spatial=(7, 8))
    a = b.max_pool(t, 3, strides=2, pads=(1, 1, 1, 1), ceil_mode=True)
    c = b.avg_pool(t, 3, strides=2, pads=(1, 1, 1, 1), ceil_mode=True, count_include_pad=count_include_pad)
    assert a.spatial == c.spatial == (4, 5)                  # width 8: ceil mode adds a window
    got_a, got_c = b.build(outputs=[a, c]).forward(x.double().numpy())
    with torch.no_grad():
        np.testing.assert_allclose(got_a, mp(x).double().numpy(), atol=1e-6)
        np.testing.assert_allclose(got_c, ap(x).double().numpy(), atol=1e-6)
