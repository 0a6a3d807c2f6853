"""Neural Sculpting: units first, then edges, each with accept / revert / halve (spec §4).

:func:`sculpt_from_dense` is the whole search after the dense training, with the task's
training, saliency and gate passed in: :func:`sculpt_grid` (the Boolean tasks, full truth
table) and :func:`trainers.mnist_sculpt.sculpt_mnist` (validation split) both run it.
All searches of one phase run in lockstep as one :class:`~trainers.model.MaskedMLP` stack:
the 14 unit searches (one per Pu) together, then the 14 × 5 edge searches together. Each
network keeps its own search state; a round trains every still-searching candidate at once.

Examples
--------
>>> import torch
>>> x = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]]); y = x[:, :1] * x[:, 1:]
>>> cfg = SculptConfig(train=TrainConfig(lr=0.05, epochs=60, batch_size=4), unit_steps=(50.0,),
...                    edge_steps=(20.0,))
>>> res = sculpt_grid(x, y, [2, 8, 1], config=cfg, seed=0)
>>> res.accuracy, res.edges < 24
(1.0, True)
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from trainers.model import MaskedMLP
from trainers.prune import edge_masks, unit_masks, unit_saliency
from trainers.train import TrainConfig, train

__all__ = ["SculptConfig", "GridResult", "search", "sculpt_grid", "sculpt_from_dense", "count_rounds",
           "torch_threads", "PU_GRID", "PE_GRID"]

#: Unit-phase steps Pu in the tie-break scan order (70 → 5).
PU_GRID = tuple(float(p) for p in range(70, 0, -5))
#: Edge-phase steps Pe in the tie-break scan order (2.5 → 0.5).
PE_GRID = (2.5, 2.0, 1.5, 1.0, 0.5)


@dataclass(frozen=True)
class SculptConfig:
    """Sculpting settings. ``unit_steps=()`` gives the edge-only baseline from the dense net.

    ``max_dense_epochs``: ``None`` (the default, as the authors' code, spec §3): the dense net
    trains once for ``train.epochs`` and pruning starts from it whatever its accuracy. A number:
    when the dense net misses the gate, it is retrained from the same initialisation with 10 more
    epochs at a time up to this count, and every later (re)training uses the epochs that worked
    (our former default, 50; not the authors'). ``threads``: torch intra-op threads.
    """

    train: TrainConfig = field(default_factory=TrainConfig)
    gate: float = 1.0
    unit_steps: tuple[float, ...] = PU_GRID
    edge_steps: tuple[float, ...] = PE_GRID
    max_dense_epochs: int | None = None
    threads: int = 1

    def to_dict(self) -> dict:
        return {"train": self.train.to_dict(), "gate": self.gate, "unit_steps": list(self.unit_steps),
                "edge_steps": list(self.edge_steps), "max_dense_epochs": self.max_dense_epochs,
                "threads": self.threads}


@dataclass
class GridResult:
    """The chosen network (a 1-network stack) and everything needed to replay the choice."""

    net: MaskedMLP
    pu: float | None
    pe: float
    accuracy: float
    loss: float
    meets_gate: bool
    history: list
    grid: list
    epochs: int
    timings: dict

    @property
    def edges(self) -> int:
        return int(self.net.edges()[0])

    @property
    def sparsity(self) -> float:
        return float(self.net.sparsity()[0])


def _records(phase, net, acc, loss, **extra) -> list[dict]:
    """One history record per network of ``net``."""
    edges, units, sparsity = net.edges().tolist(), net.units_alive().tolist(), net.sparsity().tolist()
    return [{"phase": phase, **extra, "accuracy": float(acc[j]), "loss": float(loss[j]), "edges": edges[j],
             "units": units[j], "sparsity": round(sparsity[j], 6)} for j in range(net.n_stack)]


def _candidates(net, slots, targets, phase, saliency):
    cand = net.select(slots)
    pct = torch.tensor([targets[s] for s in slots], dtype=torch.float64)
    if phase == "unit":
        cand.set_mask(unit_masks(cand, saliency(cand), pct))
    else:
        cand.set_mask(edge_masks(cand, pct))
    return cand


_UNTRAINED = {"accuracy": None, "loss": None, "edges": None, "units": None, "sparsity": None}


def _advance(s: dict, rec: dict, phase: str, target: float, rnd: int, gate: float, p_min: float) -> None:
    """Record one round of one search and apply spec §4.3: accept, or revert and halve, or stop."""
    ok = rec["accuracy"] is not None and rec["accuracy"] >= gate
    s["history"].append({**rec, "phase": phase, "round": rnd, "target": round(target, 6),
                         "mode": "scheduled" if s["scheduled"] else "linear", "step": s["step"], "accepted": ok})
    if ok:                                   # the step size is kept
        s["pct"], s["accuracy"], s["loss"] = target, rec["accuracy"], rec["loss"]
    elif s["step"] > p_min:                  # revert ('best' unchanged), linear mode, halve
        s["scheduled"], s["step"] = False, max(s["step"] / 2.0, p_min)
    else:
        s["done"] = True
    s["i"] += 1


def search(net: MaskedMLP, x, y, *, phase: str, start, steps, p_min: float, accuracy, loss,
           config: SculptConfig, seed: int, bar=None, retrain=None, saliency=None, gate: float | None = None):
    """Run one accept / revert / halve search per network of ``net`` (in place), in lockstep.

    ``phase`` is ``"unit"`` or ``"edge"``; ``start``, ``steps``, ``accuracy``, ``loss`` give
    per-network values. Returns per network ``{"pct", "accuracy", "loss", "history"}``;
    ``net`` then holds each search's last accepted network.

    ``retrain(candidates, seed) -> (accuracy, loss)`` and ``saliency(candidates)`` default to
    :func:`~trainers.train.train` and :func:`~trainers.prune.unit_saliency` on ``(x, y)``, and
    ``gate`` to ``config.gate``; the MNIST trainer passes its own (validation-based) ones.
    """
    if phase not in ("unit", "edge"):
        raise ValueError(f"unknown phase {phase!r}; choose unit or edge")
    retrain = retrain or (lambda cand, s: train(cand, x, y, config.train, seed=s))
    saliency = saliency or (lambda cand: unit_saliency(cand, x, y))
    gate = config.gate if gate is None else gate
    n = net.n_stack
    st = [{"pct": float(start[s]), "step": float(steps[s]), "scheduled": True, "i": 1, "done": False,
           "accuracy": float(accuracy[s]), "loss": float(loss[s]), "history": []} for s in range(n)]
    rnd = 0
    while not all(s["done"] for s in st):
        active = [k for k in range(n) if not st[k]["done"]]
        targets = {k: (float(start[k]) + float(steps[k]) * st[k]["i"]) if st[k]["scheduled"]
                   else st[k]["pct"] + st[k]["step"] for k in active}
        trainable = [k for k in active if targets[k] < 100.0]
        outcome = {}
        if trainable:
            cand = _candidates(net, trainable, targets, phase, saliency)
            acc, lss = retrain(cand, seed * 100_003 + rnd)
            keep = [j for j in range(len(trainable)) if float(acc[j]) >= gate]
            outcome = dict(zip(trainable, _records(phase, cand, acc, lss)))
            if keep:
                net.put([trainable[j] for j in keep], cand.select(keep))
            if bar is not None:
                bar.update(len(trainable))
        for k in active:
            _advance(st[k], outcome.get(k, _UNTRAINED), phase, targets[k], rnd, gate, p_min)
        rnd += 1
        if bar is not None:
            bar.set_postfix(phase=phase, searching=sum(not s["done"] for s in st))
    return [{k: s[k] for k in ("pct", "accuracy", "loss", "history")} for s in st]


def count_rounds(step: float, *, start: float, p_min: float, limit: float) -> int:
    """Trainings one search makes when every target ≤ ``limit`` passes and every other fails.

    Replays the step rule of :func:`search` (spec §4.3); a target ≥ 100 % costs no training.

    >>> count_rounds(50.0, start=0.0, p_min=25.0, limit=60.0)   # 50 ok, 100 free reject, 75 no
    2
    """
    s = {"pct": float(start), "step": float(step), "scheduled": True, "i": 1, "done": False, "history": []}
    trainings = 0
    while not s["done"]:
        target = start + step * s["i"] if s["scheduled"] else s["pct"] + s["step"]
        rec = dict(_UNTRAINED)
        if target < 100.0:
            trainings += 1
            rec = {**rec, "accuracy": 1.0 if target <= limit else 0.0, "loss": 0.0}
        _advance(s, rec, "estimate", target, 0, 0.5, p_min)
    return trainings


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch intra-op threads (at least 1), restoring the count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _dense(x, y, widths, config, seed):
    epochs = config.train.epochs
    while True:
        cfg = replace(config.train, epochs=epochs)
        net = MaskedMLP(widths, n_stack=1, seed=seed)
        acc, loss = train(net, x, y, cfg, seed=seed)
        if config.max_dense_epochs is None or float(acc[0]) >= config.gate or epochs >= config.max_dense_epochs:
            return net, float(acc[0]), float(loss[0]), replace(config, train=cfg)
        epochs = min(epochs + 10, config.max_dense_epochs)


def sculpt_grid(x, y, widths, *, config: SculptConfig = SculptConfig(), seed: int, progress: bool = False
                ) -> GridResult:
    """Dense training on the full truth table ``(x, y)``, then :func:`sculpt_from_dense`.

    Returns the result with the most pruned weights among those meeting the gate; ties go
    to the first in the scan "Pe in ``edge_steps`` order (outer), Pu in ``unit_steps``
    order (inner)" (spec §4.4).
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.float32)
    with torch_threads(config.threads), tqdm(desc="sculpt", unit=" trainings", disable=not progress,
                                             leave=False) as bar:
        t0 = time.perf_counter()
        dense, acc, loss, config = _dense(x, y, widths, config, seed)
        return sculpt_from_dense(dense, accuracy=acc, loss=loss, config=config, gate=config.gate, seed=seed,
                                 retrain=lambda cand, s: train(cand, x, y, config.train, seed=s),
                                 saliency=lambda cand: unit_saliency(cand, x, y), bar=bar,
                                 dense_info={"epochs": config.train.epochs},
                                 timings={"dense_s": time.perf_counter() - t0})


def sculpt_from_dense(dense: MaskedMLP, *, accuracy: float, loss: float, config, gate: float, seed: int,
                      retrain, saliency, bar=None, dense_info=None, timings=None) -> GridResult:
    """Neural Sculpting of a trained dense net: unit searches, one retraining, edge searches, the choice.

    One unit search per Pu of ``config.unit_steps`` (in lockstep; none for the edge-only
    baseline), one retraining of each result, one edge search per (Pu, Pe) of
    ``config.edge_steps``, then the sparsest result meeting ``gate`` (tie rule of
    :func:`sculpt_grid`). The task enters only through ``retrain(candidates, seed) -> (accuracy,
    loss)``, ``saliency(candidates)`` and ``gate``: :func:`sculpt_grid` trains on the full truth
    table, :func:`trainers.mnist_sculpt.sculpt_mnist` on a training split with a validation
    gate. ``accuracy`` / ``loss`` are the dense net's; ``dense_info`` adds keys to the history's
    dense record, ``timings`` holds the seconds already spent (``dense_s``).
    """
    pus, pes = list(config.unit_steps) or [None], list(config.edge_steps)
    t0 = time.perf_counter()
    units, unit_runs, retrained = _unit_phase(dense, accuracy, loss, config, gate, seed, retrain, saliency, bar)
    t1 = time.perf_counter()
    edges = units.repeat(len(pes))
    slot = [(i, j) for i in range(len(pus)) for j in range(len(pes))]
    edge_runs = search(edges, None, None, phase="edge", start=edges.sparsity().tolist(),
                       steps=[pes[j] for _, j in slot], p_min=100.0 / dense.n_weights,
                       accuracy=[unit_runs[i]["accuracy"] for i, _ in slot],
                       loss=[unit_runs[i]["loss"] for i, _ in slot], config=config, seed=seed * 7 + 3, bar=bar,
                       retrain=retrain, saliency=saliency, gate=gate)
    timings = {**(timings or {}), "unit_s": t1 - t0, "edge_s": time.perf_counter() - t1}
    grid = _grid_table(edges, slot, pus, pes, unit_runs, edge_runs, gate)
    k = _choose(grid, slot, len(pus), len(pes))
    i, j = slot[k]
    history = (_records("dense", dense, [accuracy], [loss], **(dense_info or {})) + unit_runs[i]["history"]
               + ([retrained[i]] if retrained[i] else []) + edge_runs[k]["history"])
    return GridResult(net=edges.select([k]), pu=pus[i], pe=pes[j], accuracy=edge_runs[k]["accuracy"],
                      loss=edge_runs[k]["loss"], meets_gate=grid[k]["meets_gate"], history=history, grid=grid,
                      epochs=config.train.epochs, timings=timings)


def _unit_phase(dense, acc, loss, config, gate, seed, retrain, saliency, bar):
    """The unit searches (one per Pu, in lockstep) and the one retraining of each result."""
    n = max(1, len(config.unit_steps))
    units = dense.repeat(n)
    if not config.unit_steps:                       # edge-only baseline: start from the dense net
        return units, [{"pct": 0.0, "accuracy": acc, "loss": loss, "history": []}], [None]
    runs = search(units, None, None, phase="unit", start=[0.0] * n, steps=list(config.unit_steps),
                  p_min=100.0 / dense.n_hidden, accuracy=[acc] * n, loss=[loss] * n, config=config,
                  seed=seed * 7 + 1, bar=bar, retrain=retrain, saliency=saliency, gate=gate)
    r_acc, r_loss = retrain(units, seed * 7 + 2)
    for i, run in enumerate(runs):
        run["accuracy"], run["loss"] = float(r_acc[i]), float(r_loss[i])
    return units, runs, _records("retrain", units, r_acc, r_loss)


def _grid_table(edges, slot, pus, pes, unit_runs, edge_runs, gate) -> list[dict]:
    """One row per (Pu, Pe) cell: the final network's size and accuracy, the search lengths."""
    final = _records("final", edges, [r["accuracy"] for r in edge_runs], [r["loss"] for r in edge_runs])
    return [{"pu": pus[i], "pe": pes[j], "edges": final[k]["edges"], "sparsity": final[k]["sparsity"],
             "units": final[k]["units"], "accuracy": edge_runs[k]["accuracy"],
             "meets_gate": edge_runs[k]["accuracy"] >= gate, "unit_pct": unit_runs[i]["pct"],
             "edge_pct": edge_runs[k]["pct"],
             "rounds": len(unit_runs[i]["history"]) + len(edge_runs[k]["history"])}
            for k, (i, j) in enumerate(slot)]


def _choose(grid, slot, n_pu, n_pe) -> int:
    """Fewest edges among gate-meeting results, scanning Pe (outer) then Pu (inner); first wins.

    When nothing meets the gate, the most accurate result (then the sparsest) is returned.
    """
    order = [i * n_pe + j for j in range(n_pe) for i in range(n_pu)]
    passing = [k for k in order if grid[k]["meets_gate"]]
    if passing:
        return min(passing, key=lambda k: (grid[k]["edges"], order.index(k)))
    return min(order, key=lambda k: (-grid[k]["accuracy"], grid[k]["edges"], order.index(k)))
