"""Training settings of a run: the authors' own for a published run, else the task's ``"training"``
block, per architecture, plus overrides.

**Published runs** (task, hidden layers, width, seed) take the lr, batch size and epochs the
authors passed for that run: ``data/neural-sculpting-runs.csv``, one row per published run (1,444),
a copy of ``specs/neural-sculpting-runs.csv`` read from the authors' ``shell/**.sh`` scripts
(spec §3). Its ``project_task`` column is the task's ``name`` (``load_task`` names, e.g.
``"reuse-u4"``, ``"reused"``, ``"none"``), ``hidden_layers`` and ``width`` the equal hidden
widths, ``seed`` the run's seed. Without a seed, a (task, depth, width) whose published seeds all
agree takes that value (every published cell does). Everything else (other tasks, widths,
depths or seeds) falls back to the task's training block, then to the defaults.

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
TrainConfig(lr=0.05, epochs=10, batch_size=8, weight_decay=0.0001, noise_std=0.1, betas=(0.9, 0.999), adam_eps=1e-08, log_eps=1e-08)
>>> task_train_config(load_task("[4,2,4]"), 2, epochs=30).epochs
30
>>> [task_train_config(load_task("reused"), hidden).epochs for hidden in ([24, 24], [36, 36], [48, 48])]
[40, 30, 20]
>>> c = task_train_config(load_task("reuse-u4"), [24, 24], seed=0)      # a published run
>>> (c.lr, c.batch_size, c.epochs)
(0.1, 16, 30)
>>> published_run(load_task("reuse-u4"), [24, 24], seed=3) is None      # seed 3 is not published
True
"""
from __future__ import annotations

import csv
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from modgraph.errors import FormatError
from trainers.train import TrainConfig

__all__ = ["task_train_config", "published_run", "published_runs", "dense_epoch_limit", "DEFAULTS", "RUNS_CSV",
           "OWN_DENSE_EPOCH_LIMIT"]

#: Spec §3 defaults for tasks without their own settings.
DEFAULTS = {"lr": 0.05, "batch_size": 32, "epochs": 15}
_KINDS = {"lr": float, "batch_size": int, "epochs": int}

#: Runs outside the published set: a dense net that misses the gate is retrained with 10 more
#: epochs at a time up to this count (our own choice, spec §3; the authors never retry).
OWN_DENSE_EPOCH_LIMIT = 50

#: The authors' per-run settings of every published run (spec §3).
RUNS_CSV = Path(__file__).resolve().parents[1] / "data" / "neural-sculpting-runs.csv"
_COLUMNS = ["family", "task_id", "project_task", "arch", "hidden_layers", "width", "seed", "lr",
            "batch_size", "epochs"]


@lru_cache(maxsize=None)
def published_runs(path=RUNS_CSV) -> dict:
    """``{(task name, hidden layers, width, seed): {"lr", "batch_size", "epochs"}}`` from the CSV."""
    path = Path(path)
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header != _COLUMNS:
            raise FormatError(path, "line 1", "the header " + ",".join(_COLUMNS), ",".join(header or []) or "nothing")
        out = {}
        for line, row in enumerate(rows, start=2):
            if len(row) != len(_COLUMNS):
                raise FormatError(path, f"line {line}", f"{len(_COLUMNS)} fields", str(len(row)))
            rec = dict(zip(_COLUMNS, row))
            try:
                key = (rec["project_task"], int(rec["hidden_layers"]), int(rec["width"]), int(rec["seed"]))
                value = {"lr": float(rec["lr"]), "batch_size": int(rec["batch_size"]), "epochs": int(rec["epochs"])}
            except ValueError as e:
                raise FormatError(path, f"line {line}", "integer hidden_layers, width, seed, batch_size, epochs "
                                  "and a number lr", str(e)) from None
            if not (key[1] > 0 and key[2] > 0 and all(v > 0 for v in value.values())):
                raise FormatError(path, f"line {line}", "positive depth, width, lr, batch_size and epochs",
                                  ",".join(row))
            if key in out and out[key] != value:
                raise FormatError(path, f"line {line}", f"one setting per run {key}", "a second, different one")
            out[key] = value
    return out


def published_run(task, hidden, *, seed=None) -> dict | None:
    """The authors' {lr, batch_size, epochs} for this run, or None when it is not a published run.

    ``hidden``: the hidden widths (equal widths only; the published runs have equal widths).
    ``seed=None``: the setting shared by every published seed of (task, depth, width), if any.
    """
    if isinstance(hidden, int):
        return None
    hidden = list(hidden)
    if not hidden or None in hidden or len(set(hidden)) != 1:
        return None
    runs = published_runs()
    if seed is not None:
        return runs.get((task.name, len(hidden), int(hidden[0]), int(seed)))
    found = [v for (t, d, w, _), v in runs.items() if (t, d, w) == (task.name, len(hidden), int(hidden[0]))]
    return found[0] if found and all(v == found[0] for v in found) else None


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


def task_train_config(task, hidden, *, seed=None, **overrides) -> TrainConfig:
    """The TrainConfig of a run of ``task`` with ``hidden`` (the hidden widths, or only their
    number, in which case width-specific settings take their ``"*"`` value) and ``seed``: the
    authors' settings for a published run (:func:`published_run`), else the task's training
    block, else the defaults; ``overrides`` (not None) win.
    """
    run = published_run(task, hidden, seed=seed)
    if isinstance(hidden, int):
        hidden = [None] * hidden
    hidden = list(hidden)
    base = TrainConfig(**(run if run is not None else {k: _pick(task, k, hidden) for k in _KINDS}))
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def dense_epoch_limit(task, hidden, *, seed=None) -> int | None:
    """``SculptConfig.max_dense_epochs`` for a run: ``None`` for a published run (the authors prune
    from the dense net whatever its accuracy, spec §3), else :data:`OWN_DENSE_EPOCH_LIMIT`.

    >>> from trainers.tasks import load_task
    >>> dense_epoch_limit(load_task("hierarchy-u2"), [48, 48, 48], seed=2) is None
    True
    >>> dense_epoch_limit(load_task("reuse-u2"), [8, 8], seed=0)           # width 8: not published
    50
    """
    return None if published_run(task, hidden, seed=seed) is not None else OWN_DENSE_EPOCH_LIMIT
