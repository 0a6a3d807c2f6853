"""Training settings of a task: the spec's ``"training"`` block, per architecture, plus overrides.

A spec may carry ``"training": {"lr": 0.05, "batch_size": 8, "epochs": {"1": 15, "2": 10,
"3": 20}}``. Each value is a number, or an object keyed by the number of hidden layers whose
entries are a number or, where the authors' run settings also change with the width, an
object keyed by the hidden width with ``"*"`` for every other width, e.g. ``"epochs": {"2":
{"36": 30, "48": 20, "*": 40}}``. Missing values take the spec §3 defaults for "all others"
(lr 0.05, batch 32, 15 epochs).

Examples
--------
>>> from trainers.tasks import load_task
>>> task_train_config(load_task("[4,2,4]"), 2)
TrainConfig(lr=0.05, epochs=10, batch_size=8, weight_decay=0.0001, noise_std=0.1, betas=(0.9, 0.999), adam_eps=1e-08, log_eps=1e-07)
>>> task_train_config(load_task("[4,2,4]"), 2, epochs=30).epochs
30
>>> [task_train_config(load_task("reused"), hidden).epochs for hidden in ([24, 24], [36, 36], [48, 48])]
[40, 30, 20]
"""
from __future__ import annotations

from dataclasses import replace

from trainers.train import TrainConfig

__all__ = ["task_train_config", "DEFAULTS"]

#: Spec §3 defaults for tasks without their own settings.
DEFAULTS = {"lr": 0.05, "batch_size": 32, "epochs": 15}
_KINDS = {"lr": float, "batch_size": int, "epochs": int}


def _pick(task, key, hidden):
    """The value for these hidden widths (the spec's block was validated by parse_task)."""
    value = task.spec.get("training", {}).get(key, DEFAULTS[key])
    if isinstance(value, dict):
        value = value.get(str(len(hidden)), DEFAULTS[key])
    if isinstance(value, dict):
        same = hidden and None not in hidden and len(set(hidden)) == 1
        width = str(hidden[0]) if same else None
        value = value.get(width, value.get("*", DEFAULTS[key]))
    return _KINDS[key](value)


def task_train_config(task, hidden, **overrides) -> TrainConfig:
    """The task's TrainConfig for ``hidden`` (the hidden widths, or only their number, in
    which case width-specific settings take their ``"*"`` value); ``overrides`` (not None) win.
    """
    if isinstance(hidden, int):
        hidden = [None] * hidden
    hidden = list(hidden)
    base = TrainConfig(**{k: _pick(task, k, hidden) for k in _KINDS})
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
