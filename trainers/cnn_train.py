"""Train, prune and export Filan et al.'s small CNN on MNIST; random-init calibration CNNs.

Protocol (``clusterability.md`` §5.2–5.3, arXiv 2103.03386): the small CNN of :mod:`trainers.cnn`
(without dropout, the authors' control, unless ``dropout``), cross-entropy, Adam (lr 1e-3, ε 1e-7,
the Keras defaults), batch 64, 10 epochs; then 10 fine-tuning epochs with a fresh Adam under the
same per-layer polynomial-decay magnitude pruning as the MLP (every conv and dense kernel, 50 % →
90 %, masks updated every 10 steps from step 0, exactly ``round(0.1·size)`` survivors per kernel at the
end). The training loop, schedule and mask update are the MLP's
(:func:`trainers.clusterability.run_phase`); only the model differs. Pixels / 255, images 1×28×28.

Device (``device="cpu"``, the default, ``"cuda"`` or ``"auto"``, :mod:`trainers.device`): the model,
its masks, the pruning schedule and every batch live there, the data are moved there once; the
initial weights and the batch order are drawn on the CPU, so they do not depend on the device. On
CUDA the run executes under :func:`trainers.device.device_mode` (deterministic algorithms where torch
has them): seeded, but not bit-identical to a CPU run. The models are moved back to the CPU before
export and returned there, so the files are the same whichever device trained them.

Files: ``unpruned.onnx``, ``pruned.onnx`` (:func:`trainers.cnn.export_cnn_onnx`, run record
under ``modgraph.metadata``), the same networks as modgraph HDF5 ``unpruned.h5``, ``pruned.h5``
(:func:`trainers.cnn_dag.export_cnn`: a :class:`~modgraph.dag.DagNetwork`, run record as its
metadata) and ``run.json``.

Examples
--------
>>> cfg = CNNConfig(channels=(4, 4, 4), dense=(8,))
>>> steps_per_phase(300, cfg), cfg.batch_size, cfg.epochs + cfg.prune_epochs
(50, 64, 20)
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

from modgraph.io import atomic_path
from trainers.clusterability import accuracy, run_phase
from trainers.cnn import ARCHITECTURES, small_cnn
from trainers.cnn_dag import export_cnn
from trainers.device import device_mode, resolve_device

__all__ = ["CNNConfig", "steps_per_phase", "cnn_mnist", "train_cnn", "random_init_cnns"]


@dataclass(frozen=True)
class CNNConfig:
    """Settings of one small-CNN run; the defaults are the published protocol.

    ``channels`` (3 conv widths) and ``dense`` (1 width) ``None`` mean 64, 64, 64 and 128.
    """

    seed: int = 0
    dropout: bool = False                # True: 0.25 per conv block, 0.5 after dense 128
    channels: tuple | None = None
    dense: tuple | None = None
    epochs: int = 10
    prune_epochs: int = 10               # 0: no pruning phase (only the unpruned net)
    batch_size: int = 64
    lr: float = 1e-3
    eps: float = 1e-7
    s0: float = 0.5
    s1: float = 0.9
    every: int = 10


def steps_per_phase(n_train: int, cfg: CNNConfig) -> int:
    """Optimiser steps of the training phase (= T of the pruning phase when the epochs match)."""
    return math.ceil(n_train / cfg.batch_size) * cfg.epochs


def cnn_mnist(*, data_dir=None, md5sums: dict | None = None):
    """``(x_train, y_train, x_test, y_test)``: MNIST as (n, 1, 28, 28) float32 in [0, 1], int64 labels."""
    from trainers.tasks.mnist import clusterability_mnist

    x, y, xt, yt = clusterability_mnist(data_dir=data_dir, md5sums=md5sums)
    return x.reshape(-1, 1, 28, 28), y, xt.reshape(-1, 1, 28, 28), yt


def _check_data(data) -> None:
    x, y, xt, yt = data
    for name, a, b in (("train", x, y), ("test", xt, yt)):
        if a.ndim != 4 or a.shape[1:] != (1, 28, 28) or len(a) != len(b):
            raise ValueError(f"{name} data: expected images (n, 1, 28, 28) and n labels, "
                             f"found {tuple(a.shape)} and {len(b)} labels")


def _train(data, config: CNNConfig, device, progress, on_step):
    """Both phases on ``device``: the run record, the unpruned phase's record and CPU copy, the pruned model."""
    torch.manual_seed(config.seed)                         # dropout draws (CPU and every GPU)
    gen = torch.Generator().manual_seed(config.seed)       # minibatch order, drawn on the CPU
    x, y, xt, yt = (torch.as_tensor(np.asarray(a)) for a in data)
    x, xt, y, yt = (t.to(device) for t in (x.float(), xt.float(), y.long(), yt.long()))     # moved once
    build = dict(seed=config.seed, channels=config.channels, dense=config.dense, dropout=config.dropout)
    model = small_cnn(**build).to(device)                  # initial weights drawn on the CPU
    record = {"task": "mnist-cnn-clusterability", "architecture": "small-cnn",
              "config": dataclasses.asdict(config), "n_train": len(x), "n_test": len(xt),
              "device": str(device), "torch": torch.__version__,
              "deterministic": "warn_only" if device.type == "cuda" else "cpu"}
    report = (lambda phase: None if progress is None else (lambda r: progress({"phase": phase, **r})))
    step = (lambda phase: None if on_step is None else (lambda t: on_step(phase, t, model)))
    t0 = time.perf_counter()
    record["train_history"] = run_phase(model, x, y, config, epochs=config.epochs, prune=False, gen=gen,
                                        progress=report("train"), on_step=step("train"))
    record["train_seconds"] = time.perf_counter() - t0     # the optimiser steps only (evaluation not counted)
    record["test_accuracy_unpruned"] = accuracy(model, xt, yt, batch=500)
    unpruned = small_cnn(**build)
    unpruned.load_state_dict(model.state_dict())           # a CPU copy
    unpruned_record = dict(record)
    if config.prune_epochs > 0:
        t1 = time.perf_counter()
        record["prune_history"] = run_phase(model, x, y, config, epochs=config.prune_epochs, prune=True, gen=gen,
                                            progress=report("prune"), on_step=step("prune"))
        record["prune_seconds"] = time.perf_counter() - t1
        record["test_accuracy_pruned"] = accuracy(model, xt, yt, batch=500)
        record["sparsity_per_layer"] = [1.0 - float(m.sum()) / m.numel() for m in model.masks]
    record["seconds"] = time.perf_counter() - t0
    return record, unpruned_record, unpruned, model.cpu()


def train_cnn(data, *, config: CNNConfig = CNNConfig(), out_dir=None, progress=None, on_step=None,
              device="cpu") -> dict:
    """Train then prune one small CNN; export both phases to ``out_dir`` when given.

    Parameters
    ----------
    data : tuple
        ``(x_train, y_train, x_test, y_test)``, images (n, 1, 28, 28) (e.g. :func:`cnn_mnist`).
    config : CNNConfig
    out_dir : path, optional
        Receives ``unpruned.onnx``/``.h5``, ``pruned.onnx``/``.h5`` and ``run.json``.
    progress : callable, optional
        Called with each epoch's record (phase, epoch, loss).
    on_step : callable, optional
        Called with (phase, step, model) after every optimiser step (progress bars, checks).
    device : str or torch.device
        ``cpu`` (default), ``cuda`` or ``auto`` (:func:`trainers.device.resolve_device`).

    Returns
    -------
    dict
        Config, device, test accuracy per phase, per-kernel sparsity, losses, seconds (in all, and
        ``train_seconds`` / ``prune_seconds``: each phase's optimiser steps), file paths, and the models (``models``: an unpruned copy, the pruned one, both
        on the CPU); with ``prune_epochs = 0`` only the unpruned phase is run and written.
    """
    _check_data(data)
    device = resolve_device(device)
    with device_mode(device):
        record, unpruned_record, unpruned, model = _train(data, config, device, progress, on_step)
    if out_dir is not None:
        out = Path(out_dir)
        record["files"] = export_cnn(unpruned, out / "unpruned.onnx", metadata={**unpruned_record, "phase": "unpruned"})
        if config.prune_epochs > 0:
            record["files"] += export_cnn(model, out / "pruned.onnx", metadata={**record, "phase": "pruned"})
        with atomic_path(out / "run.json") as tmp:
            tmp.write_text(json.dumps(record, indent=2))
    record["models"] = {"unpruned": unpruned.eval(), **({"pruned": model.eval()} if config.prune_epochs else {})}
    return record


def random_init_cnns(arch: str, *, seeds, out_dir, channels=None, dense=None) -> list[str]:
    """Write one Glorot-uniform, untrained ``arch`` network per seed as ``{arch}-seed{S}.onnx`` and ``.h5``.

    ``arch`` is a key of :data:`trainers.cnn.ARCHITECTURES` (``small-cnn``, ``vgg13``); no data is
    needed. BatchNorm layers (VGG) are at their initial state (γ = 1, β = 0, mean 0, variance 1).
    """
    try:
        build, layers = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(sorted(ARCHITECTURES))}") from None
    written = []
    for seed in seeds:
        model = build(seed=seed, channels=channels, dense=dense).eval()
        meta = {"task": "random-init", "architecture": arch, "seed": int(seed), "init": "glorot_uniform",
                "channels": [b.filters for b in model.blocks], "dense": [b.units for b in model.dense_blocks],
                "input": list(layers["input"])}
        written += export_cnn(model, Path(out_dir) / f"{arch}-seed{seed}.onnx", metadata=meta)
    return written
