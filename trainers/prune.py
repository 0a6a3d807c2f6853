"""Pure mask functions of Neural Sculpting (arXiv 2305.18402, spec §4.1–4.2).

Each function takes a :class:`~trainers.model.MaskedMLP` stack and per-network targets and
returns new masks (shape (S, D)); nothing is modified in place.

- Unit saliency: s_u = mean over clean rows of |a_u · ∂L_row/∂a_u| (post-ReLU a_u; L_row the
  row's own BCE averaged over its outputs, i.e. batch size 1, vectorised by summing).
- Unit masks: τ = percentile of s over all hidden units (linear interpolation, pruned units
  count with s = 0); every unit with s ≤ τ loses its incoming row, bias and outgoing column.
- Edge masks: τ = percentile of |w| pooled over every weight matrix (pruned = 0); keep
  |w| > τ; a unit's bias is dropped when all its incoming weights are gone.

Examples
--------
>>> import torch
>>> from trainers.model import MaskedMLP
>>> net = MaskedMLP([2, 4, 1], n_stack=1, seed=0)
>>> m = edge_masks(net, torch.tensor([50.0]))
>>> int(m[:, net.is_weight].sum())
6
>>> percentile(torch.tensor([[0.0, 1.0, 2.0, 3.0]]), torch.tensor([50.0])).tolist()
[1.5]
"""
from __future__ import annotations

import torch

from trainers.model import MaskedMLP
from trainers.train import bce

__all__ = ["percentile", "unit_saliency", "unit_masks", "edge_masks"]


def percentile(values: torch.Tensor, pct: torch.Tensor) -> torch.Tensor:
    """Row-wise percentile with linear interpolation (numpy's default), ``pct`` in [0, 100].

    ``values`` is (S, K), ``pct`` is (S,); returns (S,).
    """
    v = values.double().sort(dim=1).values
    pos = (pct.double().clamp(0.0, 100.0) / 100.0) * (v.shape[1] - 1)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    frac = pos - lo.double()
    lo_v = v.gather(1, lo.unsqueeze(1)).squeeze(1)
    hi_v = v.gather(1, hi.unsqueeze(1)).squeeze(1)
    return lo_v + (hi_v - lo_v) * frac


def unit_saliency(net: MaskedMLP, x: torch.Tensor, y: torch.Tensor, *, log_eps: float = 1e-8) -> torch.Tensor:
    """Taylor saliency of every hidden unit, shape (S, H) (hidden layers concatenated)."""
    theta = (net.theta * net.mask).detach().requires_grad_(True)   # only to build the graph
    with torch.enable_grad():
        acts, h = net.hidden_and_logits(x, params=theta)        # post-ReLU activations, logits
        per_row = bce(h, y, log_eps).mean(dim=2)                 # (S, N): each row's own loss
        grads = torch.autograd.grad(per_row.sum(), acts)
    return torch.cat([(a * g).abs().mean(dim=1) for a, g in zip(acts, grads)], dim=1).detach()


def unit_masks(net: MaskedMLP, saliency: torch.Tensor, pct: torch.Tensor) -> torch.Tensor:
    """Masks after pruning every hidden unit whose saliency is ≤ the ``pct`` percentile."""
    tau = percentile(saliency, pct)
    keep = (saliency > tau.unsqueeze(1)).to(net.mask.dtype)     # (S, H)
    mask = net.mask.clone()
    at = 0
    for layer in range(len(net.slices) - 1):
        width = net.widths[layer + 1]
        k = keep[:, at:at + width]
        at += width
        net.weight(layer, mask).mul_(k.unsqueeze(2))              # incoming rows
        net.bias(layer, mask).mul_(k)
        net.weight(layer + 1, mask).mul_(k.unsqueeze(1))          # outgoing columns
    return mask


def edge_masks(net: MaskedMLP, pct: torch.Tensor) -> torch.Tensor:
    """Masks keeping the weights with |w| above the global ``pct`` percentile of all weights."""
    params = net.theta * net.mask
    pool = params[:, net.is_weight].abs()
    tau = percentile(pool, pct)
    mask = net.mask.clone()
    mask[:, net.is_weight] = (pool.double() > tau.unsqueeze(1)).to(mask.dtype)
    for layer in range(len(net.slices)):
        has_in = net.weight(layer, mask).any(dim=2).to(mask.dtype)
        net.bias(layer, mask).mul_(has_in)
    return mask
