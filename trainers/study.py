"""Sculpt many (task, hidden widths, seed) cells into a cache of exported runs.

Each cell goes to ``<cache>/<task name>/<hidden>-s<seed>/network.h5`` (+ ``.onnx``,
``config.json``); a cell already in the cache is reused, so sweeps can be stopped and
resumed, and every detector is scored on exactly the same networks.
"""
from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["cell_dir", "sculpt_cells"]


def cell_dir(cache, task_name: str, hidden, seed: int) -> Path:
    return Path(cache) / task_name / f"{'x'.join(map(str, hidden))}-s{seed}"


def sculpt_cells(cells, cache, *, grid: bool = True, progress: bool = True) -> list[tuple[Path, dict]]:
    """Sculpt every ``(task_name, hidden, seed)`` not yet in ``cache``; return ``(path, info)``.

    ``info`` holds the task, depth, width, seed, accuracy, edges and sparsity of the run.
    """
    from trainers.config import dense_epoch_limit, task_train_config
    from trainers.export import export_run
    from trainers.sculpt import PE_GRID, PU_GRID, SculptConfig, sculpt_grid
    from trainers.tasks import load_task

    out = []
    for name, hidden, seed in tqdm(list(cells), desc="sculpt", unit="net", disable=not progress):
        folder = cell_dir(cache, name, hidden, seed)
        path = folder / "network.h5"
        if not path.exists():
            task = load_task(name)
            widths = [task.n_inputs, *hidden, task.n_outputs]
            cfg = SculptConfig(train=task_train_config(task, hidden, seed=seed),
                               max_dense_epochs=dense_epoch_limit(task, hidden, seed=seed),
                               unit_steps=PU_GRID if grid else (10.0,), edge_steps=PE_GRID if grid else (0.5,))
            x, y = task.truth_table()
            res = sculpt_grid(x, y, widths, config=cfg, seed=seed)
            record = {"command": "study", "task": task.id, "task_name": task.name, "hidden": list(hidden),
                      "widths": widths, "seed": seed, "grid": grid, "sculpt": cfg.to_dict()}
            export_run(res, task, folder, config=record)
        meta = _selected(path)
        out.append((path, {"task": name, "depth": len(hidden), "width": hidden[0], "seed": seed, **meta}))
    return out


def _selected(path: Path) -> dict:
    from modgraph.io import load

    m = load(path).metadata
    sel = m.get("selected", {})
    return {"accuracy": m.get("accuracy"), "edges": sel.get("edges"),
            "sparsity": None if sel.get("sparsity") is None else round(float(sel["sparsity"]), 2)}
