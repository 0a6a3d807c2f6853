"""MaskedMLP: a stack of S masked MLPs held in one flat parameter tensor.

All S networks share the widths; each has its own weights, biases and masks. The
parameters live in one tensor ``theta`` of shape (S, D) (every layer's weight
``(n_out, n_in)`` row-major, then its bias) and the masks in ``mask`` of the same shape,
so a training step over the whole stack is a handful of batched matmuls and one Adam
update (Adam is elementwise, so stacking is exact). The effective weight is W⊙M; setting
masks also zeroes the stored values, so a pruned weight is exactly 0 and, with zero
gradient and zero Adam moments, stays 0. No hooks.

ReLU hidden layers, sigmoid outputs, Kaiming-normal weights (fan_in, gain √2), zero biases
(arXiv 2305.18402, spec §3).

Examples
--------
>>> import torch
>>> net = MaskedMLP([4, 24, 24, 4], n_stack=3, seed=0)
>>> net.theta.shape, net.n_weights
(torch.Size([3, 820]), 768)
>>> net.forward(torch.zeros(16, 4)).shape
torch.Size([3, 16, 4])
>>> net.sparsity().tolist()
[0.0, 0.0, 0.0]
"""
from __future__ import annotations

import math

import torch

__all__ = ["MaskedMLP"]


class MaskedMLP:
    """S masked MLPs of the same widths, trained together.

    Parameters
    ----------
    widths : sequence of int
        Units per layer, inputs first: ``[n_in, h_1, ..., h_k, n_out]``.
    n_stack : int
        Number S of networks in the stack.
    seed : int, keyword-only
        Seed of the Kaiming-normal initialisation (network s uses the s-th draw).
    theta, mask : tensor (S, D), optional
        Existing parameters and masks (then ``seed`` is ignored).
    """

    def __init__(self, widths, *, n_stack: int = 1, seed: int = 0, theta=None, mask=None):
        self.widths = tuple(int(w) for w in widths)
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"widths must be at least 2 positive integers, got {list(widths)}")
        self.slices = []                      # per layer: (weight slice, bias slice, n_out, n_in)
        at = 0
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            self.slices.append((slice(at, at + n_out * n_in), slice(at + n_out * n_in, at + n_out * (n_in + 1)),
                                n_out, n_in))
            at += n_out * (n_in + 1)
        self.size = at
        is_w = torch.zeros(at, dtype=torch.bool)
        for ws, _, _, _ in self.slices:
            is_w[ws] = True
        self.is_weight = is_w
        if theta is None:
            theta = self._init(n_stack, seed)
        self.theta = theta.detach().clone()
        self.mask = torch.ones_like(self.theta) if mask is None else mask.detach().clone().to(self.theta.dtype)
        self.theta.mul_(self.mask)

    def _init(self, n_stack: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(seed))
        theta = torch.zeros(n_stack, self.size)
        for ws, _, n_out, n_in in self.slices:
            std = math.sqrt(2.0 / n_in)                     # Kaiming normal, fan_in, gain sqrt(2)
            theta[:, ws] = torch.randn(n_stack, n_out * n_in, generator=g) * std
        return theta

    # -- shape ----------------------------------------------------------------------------------
    @property
    def n_stack(self) -> int:
        return self.theta.shape[0]

    @property
    def n_weights(self) -> int:
        """Weights per network (biases excluded)."""
        return int(self.is_weight.sum())

    @property
    def n_hidden(self) -> int:
        return sum(self.widths[1:-1])

    def weight(self, layer: int, params=None) -> torch.Tensor:
        """Weights of ``layer``, shape (S, n_out, n_in) (a view)."""
        ws, _, n_out, n_in = self.slices[layer]
        return (self.theta if params is None else params)[:, ws].view(-1, n_out, n_in)

    def bias(self, layer: int, params=None) -> torch.Tensor:
        """Biases of ``layer``, shape (S, n_out) (a view)."""
        return (self.theta if params is None else params)[:, self.slices[layer][1]]

    # -- computation ------------------------------------------------------------------------------
    def hidden_and_logits(self, x: torch.Tensor, params=None):
        """Post-ReLU activations of every hidden layer and the output logits.

        ``x`` is (N, n_in) (shared by all networks) or (S, N, n_in). ``params`` defaults to
        ``theta * mask``.
        """
        p = self.theta * self.mask if params is None else params
        h = x.expand(p.shape[0], *x.shape) if x.dim() == 2 else x
        hidden = []
        for layer in range(len(self.slices)):
            h = torch.baddbmm(self.bias(layer, p).unsqueeze(1), h, self.weight(layer, p).transpose(1, 2))
            if layer < len(self.slices) - 1:
                h = torch.relu(h)
                hidden.append(h)
        return hidden, h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid outputs, shape (S, N, n_out)."""
        return torch.sigmoid(self.hidden_and_logits(x)[1])

    __call__ = forward

    # -- masks and bookkeeping ----------------------------------------------------------------------
    def set_mask(self, mask: torch.Tensor) -> None:
        """Replace the masks and zero the pruned values."""
        self.mask = mask.to(self.theta.dtype).clone()
        self.theta.mul_(self.mask)

    def edges(self) -> torch.Tensor:
        """Surviving weights per network, shape (S,)."""
        return self.mask[:, self.is_weight].sum(dim=1).to(torch.int64)

    def sparsity(self) -> torch.Tensor:
        """Percentage of pruned weight-mask entries per network, shape (S,)."""
        return 100.0 * (1.0 - self.edges().double() / self.n_weights)

    def units_alive(self) -> torch.Tensor:
        """Hidden units with ≥ 1 surviving incoming and ≥ 1 outgoing edge, per network (S,)."""
        alive = torch.zeros(self.n_stack, dtype=torch.int64)
        for layer in range(len(self.slices) - 1):
            w_in = self.weight(layer, self.mask) != 0
            w_out = self.weight(layer + 1, self.mask) != 0
            alive += (w_in.any(dim=2) & w_out.any(dim=1)).sum(dim=1)
        return alive

    def select(self, index) -> "MaskedMLP":
        """A new stack holding copies of the networks at ``index`` (a list or tensor)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return MaskedMLP(self.widths, theta=self.theta[index], mask=self.mask[index])

    def put(self, index, other: "MaskedMLP") -> None:
        """Overwrite the networks at ``index`` with the networks of ``other`` (in order)."""
        index = torch.as_tensor(index, dtype=torch.long)
        self.theta[index] = other.theta
        self.mask[index] = other.mask

    def repeat(self, counts: int) -> "MaskedMLP":
        """Each network repeated ``counts`` times in a row (s0, s0, ..., s1, s1, ...)."""
        index = torch.arange(self.n_stack).repeat_interleave(counts)
        return self.select(index)
