"""Training a stack of masked MLPs on a full truth table (spec §3 of arXiv 2305.18402).

Every network of the stack is trained independently but in the same batched steps:
its own shuffles, its own fresh input noise N(0, σ²) per drawn sample, its own Adam
moments (a fresh Adam for every call), its own best-epoch checkpoint. After each epoch the
clean table is evaluated; a network's checkpoint is replaced when its accuracy rises, or
when accuracy does not fall and the loss does not rise. When one batch covers the whole table
the authors' validation loss is infinite (their loader's loss sum is divided by the last batch
index, 0), so their code keeps the latest epoch with the best accuracy and the loss plays no
part; :func:`train` does the same in that case (:func:`keep_epoch`).

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

__all__ = ["TrainConfig", "train", "evaluate", "bce", "loss_gradient", "adam_step", "keep_epoch"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (defaults: spec §3; ``log_eps`` is the BCE's guard: the value taken for the
    probability of the label where it is exactly 0, 1e-8 as the authors'; see :func:`bce`)."""

    lr: float = 0.05
    epochs: int = 15
    batch_size: int = 32
    weight_decay: float = 1e-4
    noise_std: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    log_eps: float = 1e-8

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d


def bce(logits: torch.Tensor, y: torch.Tensor, log_eps: float) -> torch.Tensor:
    """Elementwise binary cross-entropy ``-log(q)`` of sigmoid(logits) against 0/1 labels ``y``.

    ``q = p·y + (1 - p)(1 - y)`` is the predicted probability of the label, as in the authors'
    ``bce_loss``; only where ``q`` is exactly 0 (float32 saturation) is ``log_eps`` used in its
    place, so a wrong output keeps its full gradient ``p - y`` however far it saturates. (An ε
    added inside every log instead, ``log(p + 1e-7)``, caps the loss of a positive label at ≈ 16
    and makes its gradient vanish below logit ≈ -16: dense nets of the hierarchy task stuck at
    "all outputs 0" because of it, issue 15.)
    """
    p = torch.sigmoid(logits)
    q = y * p + (1.0 - y) * (1.0 - p)
    return -torch.log(torch.where(q > 0, q, torch.full_like(q, log_eps)))


@torch.no_grad()
def evaluate(net: MaskedMLP, x: torch.Tensor, y: torch.Tensor, log_eps: float = 1e-8):
    """Per-bit accuracy (fraction of correct output bits, threshold 0.5) and mean BCE, each (S,)."""
    logits = net.hidden_and_logits(x)[1]
    correct = ((logits > 0).to(y.dtype) == y).to(torch.float64).mean(dim=(1, 2))
    return correct, bce(logits, y, log_eps).mean(dim=(1, 2))


def keep_epoch(acc, loss, best_acc, best_loss, *, one_batch: bool):
    """Which networks replace their checkpoint by this epoch's (a bool tensor (S,)).

    Several batches per epoch: accuracy rises, or does not fall while the loss does not rise
    (spec §3). One batch per epoch (batch size ≥ rows): accuracy does not fall, so the latest
    epoch with the best accuracy is kept, as in the authors' ``train_network``, whose
    validation loss is infinite then and whose rule falls back to ``acc >= acc_max``.
    """
    if one_batch:
        return acc >= best_acc
    return (acc > best_acc) | ((acc >= best_acc) & (loss <= best_loss))


@torch.no_grad()
def train(net: MaskedMLP, x: torch.Tensor, y: torch.Tensor, config: TrainConfig, *, seed: int):
    """Train every network of ``net`` in place; keep each one's best epoch (rule: :func:`keep_epoch`).

    Returns
    -------
    accuracy, loss : tensor (S,)
        Clean-table per-bit accuracy and mean BCE of the returned (best) checkpoints.
    """
    g = torch.Generator().manual_seed(int(seed))
    n_stack, n_rows = net.n_stack, x.shape[0]
    batch = min(int(config.batch_size), n_rows)
    one_batch = batch == n_rows
    theta, mask = net.theta, net.mask
    m1, m2 = torch.zeros_like(theta), torch.zeros_like(theta)
    best = theta.clone()
    best_acc = torch.full((n_stack,), -1.0, dtype=torch.float64)
    best_loss = torch.full((n_stack,), float("inf"))
    step = 0
    for _ in range(config.epochs):
        order = torch.rand(n_stack, n_rows, generator=g).argsort(dim=1)           # own shuffle per network
        xs = x[order] + config.noise_std * torch.randn(n_stack, n_rows, x.shape[1], generator=g)
        ys = y[order]
        for start in range(0, n_rows, batch):
            grad = loss_gradient(net, theta * mask, xs[:, start:start + batch], ys[:, start:start + batch],
                                 config.log_eps)
            step += 1
            adam_step(theta, grad.mul_(mask), m1, m2, step, config)
        acc, val = evaluate(net, x, y, config.log_eps)
        better = keep_epoch(acc, val, best_acc, best_loss, one_batch=one_batch)
        best = torch.where(better.unsqueeze(1), theta, best)
        best_acc = torch.where(better, acc, best_acc)
        best_loss = torch.where(better, val, best_loss)
    net.theta = best.mul_(mask)
    return best_acc, best_loss


def loss_gradient(net: MaskedMLP, params: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                  log_eps: float) -> torch.Tensor:
    """∂/∂params of Σ_networks (each network's mean BCE on its batch), by explicit backprop.

    ``params`` (S, D) are the effective (masked) parameters, ``x`` (S, B, n_in), ``y``
    (S, B, n_out). Equal to autograd's gradient (tested); about half its overhead.
    """
    n_layers = len(net.slices)
    inputs, pre = [x], []
    h = x
    for layer in range(n_layers):
        h = torch.baddbmm(net.bias(layer, params).unsqueeze(1), h, net.weight(layer, params).transpose(1, 2))
        if layer < n_layers - 1:
            pre.append(h)
            h = torch.relu(h)
            inputs.append(h)
    p = torch.sigmoid(h)
    # d/dz of -log(q), q = p y + (1 - p)(1 - y), with dp/dz = p (1 - p), averaged per network; where
    # q == 0 the loss is the constant -log(ε) (see bce), so the gradient is 0 there, as autograd's
    q = y * p + (1.0 - y) * (1.0 - p)
    dz = torch.where(q > 0, (1.0 - 2.0 * y) * (p * (1.0 - p)) / q, torch.zeros_like(q)) / (y.shape[1] * y.shape[2])
    grad = torch.empty_like(params)
    for layer in range(n_layers - 1, -1, -1):
        ws, bs, _, _ = net.slices[layer]
        grad[:, ws] = torch.bmm(dz.transpose(1, 2), inputs[layer]).flatten(1)
        grad[:, bs] = dz.sum(dim=1)
        if layer:
            dz = torch.bmm(dz, net.weight(layer, params)) * (pre[layer - 1] > 0)
    return grad


def adam_step(theta, grad, m1, m2, step, config) -> None:
    """torch.optim.Adam's update (L2 weight decay added to the gradient), in place; step counts from 1."""
    b1, b2 = config.betas
    grad = grad.add_(theta, alpha=config.weight_decay)
    m1.mul_(b1).add_(grad, alpha=1 - b1)
    m2.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
    denom = (m2.sqrt() / bc2 ** 0.5).add_(config.adam_eps)
    theta.addcdiv_(m1, denom, value=-config.lr / bc1)
