"""Training settings of a task: the spec's ``"training"`` block, per depth, plus overrides.

A spec may carry ``"training": {"lr": 0.05, "batch_size": 8, "epochs": {"1": 15, "2": 10,
"3": 20}}``; each value is a number or an object keyed by the number of hidden layers.
Missing values take the spec §3 defaults for "all others" (lr 0.05, batch 32, 15 epochs).

Examples
--------
>>> from trainers.tasks import load_task
>>> task_train_config(load_task("[4,2,4]"), 2)
TrainConfig(lr=0.05, epochs=10, batch_size=8, weight_decay=0.0001, noise_std=0.1, betas=(0.9, 0.999), adam_eps=1e-08, log_eps=1e-07)
>>> task_train_config(load_task("[4,2,4]"), 2, epochs=30).epochs
30
"""
from __future__ import annotations

from dataclasses import replace

from trainers.train import TrainConfig

__all__ = ["task_train_config", "DEFAULTS"]

#: Spec §3 defaults for tasks without their own settings.
DEFAULTS = {"lr": 0.05, "batch_size": 32, "epochs": 15}
_KINDS = {"lr": float, "batch_size": int, "epochs": int}


def _pick(task, key, depth):
    """The value for ``depth`` hidden layers (the spec's block was validated by parse_task)."""
    value = task.spec.get("training", {}).get(key, DEFAULTS[key])
    if isinstance(value, dict):
        value = value.get(str(depth), DEFAULTS[key])
    return _KINDS[key](value)


def task_train_config(task, n_hidden_layers: int, **overrides) -> TrainConfig:
    """The task's TrainConfig for ``n_hidden_layers``; ``overrides`` (not None) win."""
    base = TrainConfig(**{k: _pick(task, k, n_hidden_layers) for k in _KINDS})
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
