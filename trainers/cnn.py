"""The clusterability papers' CNNs: Filan et al.'s small CNN and the 13-conv VGG (PyTorch side).

Architectures (``clusterability.md`` §5.3; the layer lists of the authors' code, arXiv 2103.03386):

- **Small CNN** (MNIST, 1×28×28): three 3×3 'same' convs × 64, ReLU; 2×2 max-pool after
  conv2 and conv3; dense 128 (ReLU); output 10 (softmax). With dropout: 0.25 after every
  conv block (after its pool where it has one) and 0.5 after the dense layer. The authors'
  headline CNN numbers (§8.4: unpruned 10.69 vs 10.67, pruned 10.46 vs 10.03) are their
  "Control" runs, without dropout (rows ``CNN-MNIST, Control`` of their
  ``results/clustering_factors_cnn.csv``; dropout runs are ``CNN-MNIST+DROPOUT``), so dropout
  is off unless asked for.
- **VGG** (CIFAR-10, 3×32×32): 13 3×3 'same' convs 64, 64 | 128, 128 | 256 ×3 | 512 ×3 |
  512 ×3 (``|`` = 2×2 max-pool), each conv followed by ReLU, its pool if any, then
  BatchNorm; dropout 0.3 after the first conv, 0.4 after the other unpooled convs, 0.5
  after the last block; dense 512 + BN + dropout 0.5, dense 512, output 10. The block
  order (conv → ReLU → pool → BN → dropout) and the second dense 512 follow the authors'
  layer list (their ``CNN_VGG_MODEL_PARAMS``), which differs from geifmany/cifar-vgg.

Both are :class:`MaskedCNN`: Glorot-uniform kernels (Keras ``glorot_uniform``: fan = channels
× kernel area), zero biases, BN γ = 1, β = 0, ε = 1e-3 (Keras defaults); every conv and dense
kernel has an explicit mask buffer applied in ``forward`` (``W ⊙ M``; no hooks), as the
per-layer magnitude pruning of :mod:`trainers.clusterability` needs. The flatten is torch's
C, H, W order (Keras flattens H, W, C): the dense layers differ by a fixed permutation of
their inputs, which no channel graph (conv → conv blocks only) sees.

:func:`export_cnn_onnx` writes the legacy-exporter ONNX (eval mode, masks multiplied in,
softmax at the end, batch axis dynamic) with the run record under ``modgraph.metadata``.

Examples
--------
>>> net = small_cnn(seed=0, channels=(4, 4, 4), dense=(8,))
>>> [tuple(k.shape) for k in net.kernels]
[(4, 1, 3, 3), (4, 4, 3, 3), (4, 4, 3, 3), (8, 196), (10, 8)]
>>> len(vgg13(seed=0).convs), vgg13(seed=0).convs[-1].out_channels
(13, 512)
"""
from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from modgraph.io import atomic_path

__all__ = ["ConvBlock", "DenseBlock", "MaskedCNN", "SMALL_CNN", "VGG13", "small_cnn", "vgg13", "build_cnn",
           "export_cnn_onnx", "ARCHITECTURES"]


@dataclass(frozen=True)
class ConvBlock:
    """One 3×3 'same' conv + ReLU, then an optional 2×2 max-pool, BatchNorm and dropout."""

    filters: int
    pool: bool = False
    batch_norm: bool = False
    dropout: float = 0.0


@dataclass(frozen=True)
class DenseBlock:
    """One dense layer + ReLU, then an optional BatchNorm and dropout."""

    units: int
    batch_norm: bool = False
    dropout: float = 0.0


#: Filan et al.'s small CNN for MNIST (input 1×28×28), with its dropout.
SMALL_CNN = {"input": (1, 28, 28), "n_classes": 10,
             "convs": (ConvBlock(64, dropout=0.25), ConvBlock(64, pool=True, dropout=0.25),
                       ConvBlock(64, pool=True, dropout=0.25)),
             "dense": (DenseBlock(128, dropout=0.5),)}


def _vgg_convs():
    stages = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
    blocks, first = [], True
    for filters, n in stages:
        for i in range(n):
            last = i == n - 1
            rate = 0.3 if first else 0.0 if last else 0.4
            blocks.append(ConvBlock(filters, pool=last, batch_norm=True, dropout=rate))
            first = False
    return blocks[:-1] + [ConvBlock(512, pool=True, batch_norm=True, dropout=0.5)]


#: The 13-conv VGG of the clusterability papers for CIFAR-10 (input 3×32×32).
VGG13 = {"input": (3, 32, 32), "n_classes": 10, "convs": tuple(_vgg_convs()),
         "dense": (DenseBlock(512, batch_norm=True, dropout=0.5), DenseBlock(512))}


class MaskedCNN(nn.Module):
    """Convs then dense layers, every kernel masked; ``forward`` returns logits.

    Parameters
    ----------
    convs, dense : sequences of :class:`ConvBlock` / :class:`DenseBlock`
    input_shape : (channels, height, width)
    n_classes : int
    seed : int
        Seed of the Glorot-uniform kernels (a private generator; the global RNG is untouched).
    dropout : bool
        True applies the architecture's dropout in training (the "dropout" condition); False
        (default) is the authors' control.
    """

    def __init__(self, convs, dense, *, input_shape=(1, 28, 28), n_classes: int = 10, seed: int = 0,
                 dropout: bool = False):
        super().__init__()
        c, h, w = input_shape
        self.input_shape, self.blocks, self.dense_blocks = tuple(input_shape), tuple(convs), tuple(dense)
        self.dropout = bool(dropout)
        self.convs, self.conv_bns = nn.ModuleList(), nn.ModuleDict()
        for i, b in enumerate(self.blocks):
            self.convs.append(nn.Conv2d(c, b.filters, 3, padding=1))
            if b.batch_norm:
                self.conv_bns[str(i)] = nn.BatchNorm2d(b.filters, eps=1e-3, momentum=0.01)
            c = b.filters
            if b.pool:
                h, w = h // 2, w // 2
        width = c * h * w
        self.linears, self.dense_bns = nn.ModuleList(), nn.ModuleDict()
        for i, b in enumerate(self.dense_blocks):
            self.linears.append(nn.Linear(width, b.units))
            if b.batch_norm:
                self.dense_bns[str(i)] = nn.BatchNorm1d(b.units, eps=1e-3, momentum=0.01)
            width = b.units
        self.linears.append(nn.Linear(width, n_classes))
        gen = torch.Generator().manual_seed(seed)
        for i, layer in enumerate([*self.convs, *self.linears]):
            nn.init.xavier_uniform_(layer.weight, generator=gen)   # = Keras glorot_uniform
            nn.init.zeros_(layer.bias)
            self.register_buffer(f"mask{i}", torch.ones_like(layer.weight))

    @property
    def kernels(self) -> list[torch.Tensor]:
        """Every conv then dense kernel (the prunable weights), in the order of :attr:`masks`."""
        return [layer.weight for layer in [*self.convs, *self.linears]]

    @property
    def masks(self) -> list[torch.Tensor]:
        return [getattr(self, f"mask{i}") for i in range(len(self.convs) + len(self.linears))]

    def set_masks(self, masks) -> None:
        """Copy ``masks`` in and zero the masked weights (so optimiser state cannot revive them)."""
        for w, mine, m in zip(self.kernels, self.masks, masks):
            mine.copy_(m)
            with torch.no_grad():
                w.mul_(m)

    def _drop(self, x, rate):
        return F.dropout(x, rate, self.training) if self.dropout and rate > 0 else x

    def forward(self, x):                                            # x: (B, C, H, W)
        masks = self.masks
        for i, (conv, b) in enumerate(zip(self.convs, self.blocks)):
            x = F.relu(F.conv2d(x, conv.weight * masks[i], conv.bias, padding=1))
            if b.pool:
                x = F.max_pool2d(x, 2)
            if b.batch_norm:
                x = self.conv_bns[str(i)](x)
            x = self._drop(x, b.dropout)
        x = x.flatten(1)                                             # (B, C·H·W), channel-major
        at = len(self.convs)
        for i, (lin, b) in enumerate(zip(self.linears, self.dense_blocks)):
            x = F.relu(F.linear(x, lin.weight * masks[at + i], lin.bias))
            if b.batch_norm:
                x = self.dense_bns[str(i)](x)
            x = self._drop(x, b.dropout)
        last = self.linears[-1]
        return F.linear(x, last.weight * masks[-1], last.bias)      # logits (B, n_classes)


def _replace_widths(arch: dict, channels, dense) -> dict:
    convs, denses = arch["convs"], arch["dense"]
    if channels is not None:
        if len(channels) != len(convs):
            raise ValueError(f"channels: expected {len(convs)} conv widths, found {len(channels)}")
        convs = tuple(ConvBlock(int(c), b.pool, b.batch_norm, b.dropout) for c, b in zip(channels, convs))
    if dense is not None:
        if len(dense) != len(denses):
            raise ValueError(f"dense: expected {len(denses)} dense widths, found {len(dense)}")
        denses = tuple(DenseBlock(int(u), b.batch_norm, b.dropout) for u, b in zip(dense, denses))
    if min([b.filters for b in convs] + [b.units for b in denses]) < 1:
        raise ValueError("every conv and dense width must be a positive integer")
    return {**arch, "convs": convs, "dense": denses}


def build_cnn(arch: dict, *, seed: int, channels=None, dense=None, dropout: bool = False) -> MaskedCNN:
    """A :class:`MaskedCNN` of ``arch`` (:data:`SMALL_CNN`, :data:`VGG13`), widths optionally replaced."""
    a = _replace_widths(arch, channels, dense)
    return MaskedCNN(a["convs"], a["dense"], input_shape=a["input"], n_classes=a["n_classes"], seed=seed,
                     dropout=dropout)


def small_cnn(*, seed: int, channels=None, dense=None, dropout: bool = False) -> MaskedCNN:
    """Filan et al.'s small CNN, Glorot-uniform at ``seed`` (``channels``: 3 widths, ``dense``: 1)."""
    return build_cnn(SMALL_CNN, seed=seed, channels=channels, dense=dense, dropout=dropout)


def vgg13(*, seed: int, channels=None, dense=None, dropout: bool = False) -> MaskedCNN:
    """The 13-conv VGG, Glorot-uniform at ``seed``, BN after every conv (``channels``: 13 widths, ``dense``: 2)."""
    return build_cnn(VGG13, seed=seed, channels=channels, dense=dense, dropout=dropout)


#: architecture name (as the CLI spells it) -> (builder, layer list)
ARCHITECTURES = {"small-cnn": (small_cnn, SMALL_CNN), "vgg13": (vgg13, VGG13)}


def _plain(model: MaskedCNN) -> nn.Sequential:
    """The model as standard named torch layers (``conv1``, ``pool2``, ``bn2``, ``dense1``, ``output``...)
    with the masks multiplied in and softmax at the end, in eval mode."""
    layers = []
    for i, (conv, b) in enumerate(zip(model.convs, model.blocks), start=1):
        c = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1)
        c.weight.data, c.bias.data = (conv.weight * model.masks[i - 1]).detach().clone(), conv.bias.detach().clone()
        layers += [(f"conv{i}", c), (f"relu{i}", nn.ReLU())] + ([(f"pool{i}", nn.MaxPool2d(2))] if b.pool else [])
        layers += [(f"bn{i}", model.conv_bns[str(i - 1)])] if b.batch_norm else []
    layers.append(("flatten", nn.Flatten()))
    at = len(model.convs)
    for i, lin in enumerate(model.linears):
        d = nn.Linear(lin.in_features, lin.out_features)
        d.weight.data, d.bias.data = (lin.weight * model.masks[at + i]).detach().clone(), lin.bias.detach().clone()
        if i == len(model.dense_blocks):
            layers += [("output", d), ("softmax", nn.Softmax(dim=1))]
            break
        layers += [(f"dense{i + 1}", d), (f"dense{i + 1}_relu", nn.ReLU())]
        layers += [(f"dense{i + 1}_bn", model.dense_bns[str(i)])] if model.dense_blocks[i].batch_norm else []
    return nn.Sequential(OrderedDict(layers)).eval()


def export_cnn_onnx(model: MaskedCNN, path, *, metadata: dict | None = None) -> None:
    """Write ``model`` (masks applied, eval mode, softmax output) as ONNX, atomically.

    PyTorch's legacy exporter (``dynamo=False``) with its defaults: constant folding, and a
    BatchNorm directly after a Conv fused into it (here BN follows ReLU or a pool, so every
    BN stays a ``BatchNormalization`` node). Layers are named ``conv1``…, ``pool2``…, ``bn1``…,
    ``dense1``…, ``output`` (nodes ``/conv1/Conv``, initialisers ``conv1.weight``). Input ``input``
    (batch, C, H, W), output ``output`` (batch, n_classes); ``metadata`` is stored as JSON under
    ``modgraph.metadata``.
    """
    import onnx

    plain = _plain(model)
    example = torch.zeros(1, *model.input_shape)
    with atomic_path(path) as tmp:
        torch.onnx.export(plain, (example,), str(tmp), dynamo=False, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "modgraph.metadata", json.dumps(metadata or {})
        onnx.save(proto, str(tmp))
