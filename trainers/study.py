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


def sculpt_cells(cells, cache, *, grid: bool = True, progress: bool = True, workers: int = 1
                 ) -> list[tuple[Path, dict]]:
    """Sculpt every ``(task_name, hidden, seed)`` not yet in ``cache``; return ``(path, info)`` in
    the order of ``cells``.

    ``info`` holds the task, depth, width, seed, accuracy, edges and sparsity of the run.
    ``workers`` > 1 sculpts the missing cells in that many spawned processes (one torch thread
    each), the costliest first (:func:`cell_cost`); every cell is seeded by its own seed only, so
    the networks are those of ``workers=1`` (weights, masks, metadata; only the wall times in
    ``metadata["timings"]`` differ). A cell that fails stops the sweep with its name; finished
    cells stay in the cache.
    """
    cells = [(name, tuple(hidden), int(seed)) for name, hidden, seed in cells]
    missing = [c for c in dict.fromkeys(cells) if not (cell_dir(cache, *c) / "network.h5").exists()]
    from trainers.tasks import load_task
    for name in dict.fromkeys(c[0] for c in missing):
        load_task(name)                               # an unknown task is refused before any training
    if workers > 1 and len(missing) > 1:
        _sculpt_parallel(missing, cache, grid=grid, progress=progress, workers=workers)
    else:
        for cell in tqdm(missing, desc="sculpt", unit="net", disable=not progress):
            sculpt_cell(cell, cache, grid=grid)
    out = []
    for name, hidden, seed in cells:
        path = cell_dir(cache, name, hidden, seed) / "network.h5"
        meta = _selected(path)
        out.append((path, {"task": name, "depth": len(hidden), "width": hidden[0], "seed": seed, **meta}))
    return out


def sculpt_cell(cell, cache, *, grid: bool = True) -> Path:
    """Sculpt one ``(task_name, hidden, seed)`` cell into ``cache`` (spec §3-4 with the task's own
    training settings); returns its ``network.h5``."""
    from trainers.config import dense_epoch_limit, task_train_config
    from trainers.export import export_run
    from trainers.sculpt import PE_GRID, PU_GRID, SculptConfig, sculpt_grid
    from trainers.tasks import load_task

    name, hidden, seed = cell
    folder = cell_dir(cache, name, hidden, seed)
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
    return folder / "network.h5"


def cell_cost(cell) -> float:
    """A cell's relative training cost for scheduling: per training, epochs × (rows × weights, the
    arithmetic, + a fixed cost per Adam step, the call overhead that dominates small batches)."""
    from trainers.config import task_train_config
    from trainers.tasks import load_task

    name, hidden, seed = cell
    task = load_task(name)
    cfg = task_train_config(task, tuple(hidden), seed=seed)
    rows = 2 ** task.n_inputs
    widths = [task.n_inputs, *hidden, task.n_outputs]
    steps = -(-rows // min(cfg.batch_size, rows))
    return cfg.epochs * (rows * sum(a * b for a, b in zip(widths[:-1], widths[1:])) + 20_000 * steps)


def _sculpt_parallel(missing, cache, *, grid, progress, workers) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    order = sorted(missing, key=cell_cost, reverse=True)          # longest first: the pool ends together
    ctx = multiprocessing.get_context("spawn")                      # no forked torch thread pools
    with ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx) as pool, \
            tqdm(total=len(order), desc="sculpt", unit="net", disable=not progress) as bar:
        pending = {pool.submit(sculpt_cell, c, str(cache), grid=grid): c for c in order}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    cell = pending.pop(fut)
                    err = fut.exception()
                    if err is not None:
                        raise RuntimeError(f"sculpting {cell[0]} {'x'.join(map(str, cell[1]))} seed {cell[2]} "
                                           f"failed: {type(err).__name__}: {err}") from err
                    bar.update(1)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise


def _selected(path: Path) -> dict:
    from modgraph.io import load

    m = load(path).metadata
    sel = m.get("selected", {})
    return {"accuracy": m.get("accuracy"), "edges": sel.get("edges"),
            "sparsity": None if sel.get("sparsity") is None else round(float(sel["sparsity"]), 2)}
