"""Neural Sculpting on MNIST two-digit task 1 (``neural-sculpting.md`` §2, §4, §10).

What differs from the Boolean pipeline of :mod:`trainers.sculpt`:

- minibatches are gathered per step (no full-table copy per epoch), no input noise;
- the best epoch is chosen and pruning steps are accepted on a **validation** split (the
  last ``n_val`` of the 800 training images per class), per-bit accuracy, BCE on sigmoids;
- the gate is the dense network's validation per-bit accuracy minus ``gate_drop`` (0.5
  points by default), logged in the result;
- unit saliency is averaged over all training rows in chunks (bounded memory);
- test per-bit accuracy of the chosen network is reported at the end only.

The searches, the step rule (accept / revert / halve) and the grid choice are those of
:func:`trainers.sculpt.sculpt_from_dense`, given this task's training, saliency and gate.

Examples
--------
>>> cfg = MnistSculptConfig()
>>> (cfg.train.lr, cfg.train.batch_size, cfg.train.epochs, cfg.train.noise_std, cfg.gate_drop)
(0.001, 256, 40, 0.0, 0.005)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from modgraph.tasks import GROUND_TRUTH_FORMAT, GROUND_TRUTH_VERSION
from trainers.model import MaskedMLP
from trainers.prune import unit_saliency
from trainers.sculpt import sculpt_from_dense, torch_threads
from trainers.train import TrainConfig, adam_step, bce, loss_gradient

__all__ = ["MnistSculptConfig", "fit", "evaluate_chunked", "sculpt_mnist", "mnist_ground_truth", "TASK_NAME"]

TASK_NAME = "mnist-task1"


@dataclass(frozen=True)
class MnistSculptConfig:
    """MNIST settings: spec §2 training (lr 1e-3, batch 256, 40 epochs, no noise), one (Pu, Pe) by default."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-3, epochs=40, batch_size=256,
                                                                   noise_std=0.0))
    gate_drop: float = 0.005
    unit_steps: tuple[float, ...] = (10.0,)
    edge_steps: tuple[float, ...] = (0.5,)
    threads: int = 1
    chunk: int = 4096

    def to_dict(self) -> dict:
        return {"train": self.train.to_dict(), "gate_drop": self.gate_drop, "unit_steps": list(self.unit_steps),
                "edge_steps": list(self.edge_steps), "threads": self.threads, "chunk": self.chunk}


@torch.no_grad()
def evaluate_chunked(net: MaskedMLP, x, y, *, log_eps: float = 1e-8, chunk: int = 4096):
    """Per-bit accuracy (threshold 0.5) and mean BCE of every network, each (S,), over row chunks."""
    correct = torch.zeros(net.n_stack, dtype=torch.float64)
    loss = torch.zeros(net.n_stack, dtype=torch.float64)
    for s in range(0, x.shape[0], chunk):
        logits = net.hidden_and_logits(x[s:s + chunk])[1]
        yc = y[s:s + chunk]
        correct += ((logits > 0).to(yc.dtype) == yc).to(torch.float64).sum(dim=(1, 2))
        loss += bce(logits, yc, log_eps).to(torch.float64).sum(dim=(1, 2))
    cells = x.shape[0] * y.shape[1]
    return correct / cells, (loss / cells).float()


@torch.no_grad()
def fit(net: MaskedMLP, x, y, x_val, y_val, config: TrainConfig, *, seed: int, chunk: int = 4096):
    """Train every network of ``net`` in place (own shuffles, fresh Adam); keep the best validation epoch.

    Selection rule of spec §3 on the validation split: accuracy rises, or does not fall while
    the loss does not rise. Returns the (S,) validation accuracy and loss of the kept epochs.
    """
    g = torch.Generator().manual_seed(int(seed))
    n_stack, n_rows = net.n_stack, x.shape[0]
    batch = min(int(config.batch_size), n_rows)
    theta, mask = net.theta, net.mask
    m1, m2 = torch.zeros_like(theta), torch.zeros_like(theta)
    best, step = theta.clone(), 0
    best_acc = torch.full((n_stack,), -1.0, dtype=torch.float64)
    best_loss = torch.full((n_stack,), float("inf"))
    for _ in range(config.epochs):
        order = torch.rand(n_stack, n_rows, generator=g).argsort(dim=1)
        for start in range(0, n_rows, batch):
            idx = order[:, start:start + batch]
            xb = x[idx]
            if config.noise_std:
                xb = xb + config.noise_std * torch.randn(xb.shape, generator=g)
            grad = loss_gradient(net, theta * mask, xb, y[idx], config.log_eps)
            step += 1
            adam_step(theta, grad.mul_(mask), m1, m2, step, config)
        acc, val = evaluate_chunked(net, x_val, y_val, log_eps=config.log_eps, chunk=chunk)
        better = (acc > best_acc) | ((acc >= best_acc) & (val <= best_loss))
        best = torch.where(better.unsqueeze(1), theta, best)
        best_acc, best_loss = torch.where(better, acc, best_acc), torch.where(better, val, best_loss)
    net.theta = best.mul_(mask)
    return best_acc, best_loss


def _saliency(net: MaskedMLP, x, y, chunk: int) -> torch.Tensor:
    """Spec §4.1 unit saliency, the mean over all rows accumulated chunk by chunk."""
    total = None
    for s in range(0, x.shape[0], chunk):
        part = unit_saliency(net, x[s:s + chunk], y[s:s + chunk]) * min(chunk, x.shape[0] - s)
        total = part if total is None else total + part
    return total / x.shape[0]


def sculpt_mnist(task, widths, *, config: MnistSculptConfig = MnistSculptConfig(), seed: int,
                 progress: bool = False):
    """Dense training, then :func:`trainers.sculpt.sculpt_from_dense` with validation-based training and gate.

    ``task`` is a :class:`~trainers.tasks.mnist.TwoDigitTask`. Returns ``(GridResult, info)``;
    ``info`` holds the gate, the dense validation accuracy and the chosen net's test accuracy.
    """
    t = {k: torch.as_tensor(getattr(task, k), dtype=torch.float32)
         for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
    data = (t["x_train"], t["y_train"], t["x_val"], t["y_val"])
    cfg = config
    with torch_threads(cfg.threads), tqdm(desc="mnist-sculpt", unit=" trainings", disable=not progress) as bar:
        t0 = time.perf_counter()
        dense = MaskedMLP(widths, n_stack=1, seed=seed)
        d_acc, d_loss = (float(v[0]) for v in fit(dense, *data, cfg.train, seed=seed, chunk=cfg.chunk))
        gate = d_acc - cfg.gate_drop
        result = sculpt_from_dense(
            dense, accuracy=d_acc, loss=d_loss, config=cfg, gate=gate, seed=seed, bar=bar,
            retrain=lambda cand, s: fit(cand, *data, cfg.train, seed=s, chunk=cfg.chunk),
            saliency=lambda cand: _saliency(cand, data[0], data[1], cfg.chunk),
            dense_info={"epochs": cfg.train.epochs, "gate": gate}, timings={"dense_s": time.perf_counter() - t0})
    test_acc, test_loss = evaluate_chunked(result.net, t["x_test"], t["y_test"], chunk=cfg.chunk)
    dense_test = evaluate_chunked(dense, t["x_test"], t["y_test"], chunk=cfg.chunk)[0]
    info = {"gate": gate, "gate_drop": cfg.gate_drop, "dense_val_accuracy": d_acc,
            "dense_test_accuracy": float(dense_test[0]), "val_accuracy": result.accuracy,
            "test_accuracy": float(test_acc[0]), "test_loss": float(test_loss[0])}
    return result, info


def mnist_ground_truth() -> dict:
    """Task 1 ground truth in the ``modgraph-ground-truth`` format (28×56 row-major pixels).

    >>> gt = mnist_ground_truth(); [len(g) for g in gt["input_groups"]], gt["output_groups"][1][:2]
    ([784, 784], [10, 11])
    """
    inputs = [f"r{r}c{c}" for r in range(28) for c in range(56)]
    left = [r * 56 + c for r in range(28) for c in range(28)]
    right = [r * 56 + 28 + c for r in range(28) for c in range(28)]
    subs = [{"name": name, "gate": "DIGIT", "args": [], "level": 1, "inputs": pix, "outputs": outs,
             "consumers": [], "n_output_functions": 10}
            for name, pix, outs in (("left digit", left, list(range(10))),
                                    ("right digit", right, list(range(10, 20))))]
    return {"format": GROUND_TRUTH_FORMAT, "version": GROUND_TRUTH_VERSION, "task": "[1568,2,20]",
            "name": TASK_NAME, "inputs": inputs, "outputs": [f"y{k + 1}" for k in range(20)],
            "output_functions": [f"left=={d}" for d in range(10)] + [f"right=={d}" for d in range(10)],
            "sub_functions": subs, "n_levels": 1, "input_groups": [left, right], "unused_inputs": [],
            "output_groups": [list(range(10)), list(range(10, 20))]}
