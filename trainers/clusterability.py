"""The clusterability papers' MNIST MLP: train, prune to 90 % per layer, export both phases.

Protocol (``clusterability.md`` §5, arXiv 2103.03386): MLP 784-256×4-10, ReLU, softmax
output, Glorot-uniform kernels, zero biases, cross-entropy, Adam (lr 1e-3, ε 1e-7, the
Keras defaults), batch 128, 20 epochs, optional inverted Dropout(0.5) after each hidden
ReLU. Then 20 fine-tuning epochs with a fresh Adam under per-layer polynomial-decay
magnitude pruning ``s(t) = s1 + (s0 − s1)(1 − t/T)³``, ``T = ceil(n / batch) · epochs``,
masks updated every 10 steps from step 0; each kernel keeps its ``round((1 − s)·size)``
largest ``|W ⊙ mask|`` (pruned weights stay pruned). The steps run t = 0 .. T − 1, so the
schedule's end point ``s(T) = s1`` is applied once after the last step: every kernel ends
with exactly ``round((1 − s1)·size)`` surviving weights. (With the published T = 9,380 the
last in-loop update, s(9,370) = 0.9 − 5·10⁻¹⁰, already keeps the same count.)

Both phases are written as modgraph HDF5 (``unpruned.h5``, ``pruned.h5``) and, when
``modgraph.io.export_onnx`` is available, as ONNX beside them.

Examples
--------
>>> [round(sparsity_at(t, T=100), 4) for t in (0, 50, 100)]
[0.5, 0.85, 0.9]
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from modgraph.io import atomic_path, save
from modgraph.network import Layer, LayeredNetwork

__all__ = ["ClusterabilityConfig", "ClusterabilityMLP", "sparsity_at", "magnitude_masks", "run_phase",
           "accuracy", "train_clusterability", "to_network"]


@dataclass(frozen=True)
class ClusterabilityConfig:
    """Settings of one clusterability run; the defaults are the published protocol."""

    seed: int = 0
    dropout: float = 0.0                 # 0.5 for the "+ dropout" condition
    widths: tuple = (784, 256, 256, 256, 256, 10)
    epochs: int = 20
    prune_epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    eps: float = 1e-7
    s0: float = 0.5
    s1: float = 0.9
    every: int = 10


def sparsity_at(t: int, *, T: int, s0: float = 0.5, s1: float = 0.9) -> float:
    """Polynomial-decay (power 3) target sparsity at step ``t`` of ``T``."""
    return s1 + (s0 - s1) * (1.0 - min(t, T) / T) ** 3


def magnitude_masks(weights, masks, sparsity: float) -> list[torch.Tensor]:
    """Per kernel, keep exactly the ``round((1 − sparsity)·size)`` largest ``|W ⊙ mask|``.

    Ties are broken by position (stable sort), so the count is exact.
    """
    out = []
    for w, m in zip(weights, masks):
        size = w.numel()
        keep = int(round((1.0 - sparsity) * size))
        score = (w.detach() * m).abs().flatten()
        order = torch.argsort(-score, stable=True)
        new = torch.zeros(size, dtype=m.dtype, device=m.device)
        new[order[:keep]] = 1
        out.append(new.view_as(m) * m)      # pruned stay pruned
    return out


class ClusterabilityMLP(nn.Module):
    """Masked MLP; ``forward`` returns logits (softmax lives in the loss and the export)."""

    def __init__(self, widths, *, dropout: float = 0.0):
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        for lin in self.linears:
            nn.init.xavier_uniform_(lin.weight)       # = Keras glorot_uniform (fan_in + fan_out)
            nn.init.zeros_(lin.bias)
        for i, lin in enumerate(self.linears):
            self.register_buffer(f"mask{i}", torch.ones_like(lin.weight))
        self.dropout = float(dropout)

    @property
    def kernels(self) -> list[torch.Tensor]:
        """The prunable weights, in the order of :attr:`masks`."""
        return [lin.weight for lin in self.linears]

    @property
    def masks(self) -> list[torch.Tensor]:
        return [getattr(self, f"mask{i}") for i in range(len(self.linears))]

    def set_masks(self, masks) -> None:
        for i, (lin, m) in enumerate(zip(self.linears, masks)):
            getattr(self, f"mask{i}").copy_(m)
            with torch.no_grad():
                lin.weight.mul_(m)

    def forward(self, x):
        last = len(self.linears) - 1
        for i, (lin, m) in enumerate(zip(self.linears, self.masks)):
            x = F.linear(x, lin.weight * m, lin.bias)
            if i < last:
                x = F.dropout(F.relu(x), self.dropout, self.training)
        return x


def accuracy(model, x, y, *, batch: int = 2048) -> float:
    """Fraction of rows of ``x`` whose argmax logit is ``y`` (eval mode, ``batch`` rows at a time)."""
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    model.train()
    return hits / len(x)


def run_phase(model, x, y, cfg, *, epochs: int, prune: bool, gen, progress=None, on_step=None) -> list[dict]:
    """One phase: ``epochs`` over the data with a fresh Adam; pruning schedule when ``prune``.

    ``model`` is any module with ``kernels`` (the prunable weights), ``masks`` (one per
    kernel) and ``set_masks``; ``cfg`` any config with ``lr``, ``eps``, ``batch_size``,
    ``every``, ``s0`` and ``s1`` (:class:`ClusterabilityConfig`, the CNN's config).
    ``progress`` gets each epoch's record, ``on_step`` the step count after each step.
    ``x`` and ``y`` live on the model's device; ``gen`` is a CPU generator (the same batch order on
    every device), and the loss is summed on the device, read once per epoch (no sync per step).
    """
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.eps)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    T, t, history = steps_per_epoch * epochs, 0, []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen).to(x.device)
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        for s in range(steps_per_epoch):
            if prune and t <= T and t % cfg.every == 0:
                model.set_masks(magnitude_masks(model.kernels, model.masks,
                                                sparsity_at(t, T=T, s0=cfg.s0, s1=cfg.s1)))
            idx = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if prune:
                model.set_masks(model.masks)         # re-apply: Adam momentum must not revive weights
            total += loss.detach().double() * len(idx)     # = float(loss) * len(idx), summed in float64
            t += 1
            if on_step is not None:
                on_step(t)
        history.append({"epoch": epoch + 1, "loss": float(total) / len(x)})
        if progress is not None:
            progress(history[-1])
    if prune:                                         # the loop stops at t = T - 1: apply s(T) = s1
        model.set_masks(magnitude_masks(model.kernels, model.masks, cfg.s1))
    return history


def to_network(model: ClusterabilityMLP, *, pruned: bool, metadata: dict) -> LayeredNetwork:
    """The model as a :class:`LayeredNetwork`: (out, in) kernels, biases, softmax output.

    For the pruned phase only mask survivors are stored; unpruned, every weight is.
    """
    layers, last = [], len(model.linears) - 1
    for i, (lin, m) in enumerate(zip(model.linears, model.masks)):
        w = (lin.weight * m).detach().double().numpy()
        mask = m.detach().numpy().astype(bool) if pruned else np.ones(w.shape, bool)
        layers.append(Layer.from_dense(w, lin.bias.detach().double().numpy(), mask=mask,
                                       activation="softmax" if i == last else "relu"))
    return LayeredNetwork(layers, metadata=metadata)


def _export(net: LayeredNetwork, path: Path) -> list[str]:
    save(net, path)
    written = [str(path)]
    try:
        from modgraph.io import export_onnx
    except ImportError:             # the ONNX writer lands with the loaders issue
        return written
    onnx_path = path.with_suffix(".onnx")
    export_onnx(net, onnx_path)
    return written + [str(onnx_path)]


def train_clusterability(data, *, config: ClusterabilityConfig = ClusterabilityConfig(), out_dir=None,
                         progress=None) -> dict:
    """Train then prune one MLP; export both phases to ``out_dir`` when given.

    Parameters
    ----------
    data : tuple
        ``(x_train, y_train, x_test, y_test)`` arrays (e.g. from
        :func:`trainers.tasks.mnist.clusterability_mnist`).
    config : ClusterabilityConfig
    out_dir : path, optional
        Receives ``unpruned.h5``, ``pruned.h5`` (+ ``.onnx``) and ``run.json``.
    progress : callable, optional
        Called with each epoch's record (phase, epoch, loss).

    Returns
    -------
    dict
        Config, accuracies per phase, per-layer sparsity, losses, seconds, file paths.
    """
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    x, y, xt, yt = (torch.as_tensor(np.asarray(a)) for a in data)
    x, xt, y, yt = x.float(), xt.float(), y.long(), yt.long()
    model = ClusterabilityMLP(config.widths, dropout=config.dropout)
    record = {"task": "mnist-clusterability", "config": dataclasses.asdict(config),
              "n_train": len(x), "n_test": len(xt)}
    report = (lambda phase: None if progress is None else (lambda r: progress({"phase": phase, **r})))
    t0 = time.perf_counter()
    record["train_history"] = run_phase(model, x, y, config, epochs=config.epochs, prune=False, gen=gen,
                                         progress=report("train"))
    record["test_accuracy_unpruned"] = accuracy(model, xt, yt)
    unpruned = to_network(model, pruned=False, metadata={**record, "phase": "unpruned"})
    record["prune_history"] = run_phase(model, x, y, config, epochs=config.prune_epochs, prune=True, gen=gen,
                                         progress=report("prune"))
    record["test_accuracy_pruned"] = accuracy(model, xt, yt)
    record["sparsity_per_layer"] = [1.0 - float(m.sum()) / m.numel() for m in model.masks]
    record["seconds"] = time.perf_counter() - t0
    pruned = to_network(model, pruned=True, metadata={**record, "phase": "pruned"})
    record["networks"] = {"unpruned": unpruned, "pruned": pruned}
    if out_dir is not None:
        out = Path(out_dir)
        files = _export(unpruned, out / "unpruned.h5") + _export(pruned, out / "pruned.h5")
        record["files"] = files
        with atomic_path(out / "run.json") as tmp:
            tmp.write_text(json.dumps({k: v for k, v in record.items() if k != "networks"}, indent=2))
    return record

