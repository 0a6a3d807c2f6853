"""Training a stack of masked MLPs on a full truth table (spec §3 of arXiv 2305.18402).

Every network of the stack is trained independently but in the same batched steps:
its own shuffles, its own fresh input noise N(0, σ²) per drawn sample, its own Adam
moments (a fresh Adam for every call), its own best-epoch checkpoint. After each epoch the
clean table is evaluated; a network's checkpoint is replaced when its accuracy rises, or
when accuracy does not fall and the loss does not rise.

Examples
--------
>>> import torch
>>> from trainers.model import MaskedMLP
>>> x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]); y = x[:, :1] * x[:, 1:]
>>> net = MaskedMLP([2, 8, 1], n_stack=2, seed=0)
>>> acc, loss = train(net, x, y, TrainConfig(lr=0.05, epochs=60, batch_size=4), seed=0)
>>> acc.tolist()
[1.0, 1.0]
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from trainers.model import MaskedMLP

__all__ = ["TrainConfig", "train", "evaluate", "bce"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (defaults: spec §3; ``log_eps`` is the ε guard inside the BCE logs)."""

    lr: float = 0.05
    epochs: int = 15
    batch_size: int = 32
    weight_decay: float = 1e-4
    noise_std: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    log_eps: float = 1e-7

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def bce(logits: torch.Tensor, y: torch.Tensor, log_eps: float) -> torch.Tensor:
    """Elementwise binary cross-entropy of sigmoid(logits) against y, with ε-guarded logs."""
    p = torch.sigmoid(logits)
    return -(y * torch.log(p + log_eps) + (1.0 - y) * torch.log(1.0 - p + log_eps))


@torch.no_grad()
def evaluate(net: MaskedMLP, x: torch.Tensor, y: torch.Tensor, log_eps: float = 1e-7):
    """Per-bit accuracy (fraction of correct output bits, threshold 0.5) and mean BCE, each (S,)."""
    logits = net.hidden_and_logits(x)[1]
    correct = ((logits > 0).to(y.dtype) == y).to(torch.float64).mean(dim=(1, 2))
    return correct, bce(logits, y, log_eps).mean(dim=(1, 2))


def train(net: MaskedMLP, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, *, seed: int):
    """Train every network of ``net`` in place; keep each one's best epoch.

    Returns
    -------
    accuracy, loss : tensor (S,)
        Clean-table per-bit accuracy and mean BCE of the returned (best) checkpoints.
    """
    g = torch.Generator().manual_seed(int(seed))
    n_stack, n_rows = net.n_stack, x.shape[0]
    batch = min(int(config.batch_size), n_rows)
    theta = net.theta.requires_grad_(True)
    mask = net.mask
    m1, m2 = torch.zeros_like(theta), torch.zeros_like(theta)
    best = theta.detach().clone()
    best_acc = torch.full((n_stack,), -1.0, dtype=torch.float64)
    best_loss = torch.full((n_stack,), float("inf"))
    b1, b2 = config.betas
    step = 0
    for _ in range(config.epochs):
        order = torch.rand(n_stack, n_rows, generator=g).argsort(dim=1)           # own shuffle per network
        xs = x[order] + config.noise_std * torch.randn(n_stack, n_rows, x.shape[1], generator=g)
        ys = y[order]
        for start in range(0, n_rows, batch):
            xb, yb = xs[:, start:start + batch], ys[:, start:start + batch]
            logits = net.hidden_and_logits(xb, theta * mask)[1]
            loss = bce(logits, yb, config.log_eps).mean(dim=(1, 2)).sum()   # each network: its own mean
            (grad,) = torch.autograd.grad(loss, theta)
            step += 1
            with torch.no_grad():
                _adam(theta, grad, m1, m2, step, config, b1, b2)
        with torch.no_grad():
            acc, val = evaluate(net, x, y, config.log_eps)
            better = (acc > best_acc) | ((acc >= best_acc) & (val <= best_loss))
            best = torch.where(better.unsqueeze(1), theta, best)
            best_acc = torch.where(better, acc, best_acc)
            best_loss = torch.where(better, val, best_loss)
    net.theta = best.mul_(mask)
    return best_acc, best_loss


def _adam(theta, grad, m1, m2, step, config, b1, b2) -> None:
    """torch.optim.Adam's update (L2 weight decay added to the gradient), in place."""
    grad = grad.add(theta, alpha=config.weight_decay)
    m1.mul_(b1).add_(grad, alpha=1 - b1)
    m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
    denom = (m2.sqrt() / bc2 ** 0.5).add_(config.adam_eps)
    theta.addcdiv_(m1, denom, value=-config.lr / bc1)
