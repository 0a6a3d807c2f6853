"""Wall time of Neural Sculpting on `[4,2,4]` / `[4,24,24,4]`, seed 0 (issue 4 benchmark).

Rows, measured side by side (median of --repeats runs, after one warm-up):
- the full (Pu, Pe) grid (14 unit searches in lockstep, then 70 edge searches in lockstep);
- one unit-phase + one edge-phase search (Pu = 5, Pe = 0.5: the longest single searches);
- the same grid run cell by cell, unbatched (70 single (Pu, Pe) runs), with --unbatched.
Each with 1 and 2 torch threads. Prints a table; --json writes the rows.
--exemplars also runs the full grid for the four exemplars on [n, 24, 24, m], seeds 0, 1, 2, 5,
and prints edges / sparsity / accuracy against the spec §7.2 targets.

Usage: .venv/bin/python benchmarks/sculpt_grid.py [--repeats 3] [--unbatched] [--exemplars] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from trainers.config import task_train_config
from trainers.sculpt import PE_GRID, PU_GRID, SculptConfig, sculpt_grid
from trainers.tasks import load_task


def _run(x, y, cfg, widths):
    t0 = time.perf_counter()
    res = sculpt_grid(x, y, widths, config=cfg, seed=0)
    return time.perf_counter() - t0, res


def _unbatched(x, y, base, widths):
    t0 = time.perf_counter()
    best = None
    for pe in PE_GRID:
        for pu in PU_GRID:
            _, res = _run(x, y, SculptConfig(train=base.train, unit_steps=(pu,), edge_steps=(pe,),
                                             threads=base.threads), widths)
            if res.meets_gate and (best is None or res.edges < best.edges):
                best = res
    return time.perf_counter() - t0, best


def _exemplars() -> list[dict]:
    rows = []
    for name, target in [("[4,2,4]", "16-18"), ("[6,3,3,3]", "15"), ("[4,1,2,16]", "29-31"), ("[4,1,4]", "-")]:
        task = load_task(name)
        x, y = task.truth_table()
        cfg = SculptConfig(train=task_train_config(task, 2))
        for seed in (0, 1, 2, 5):
            t0 = time.perf_counter()
            res = sculpt_grid(x, y, [task.n_inputs, 24, 24, task.n_outputs], config=cfg, seed=seed)
            rows.append({"task": name, "seed": seed, "seconds": time.perf_counter() - t0, "edges": res.edges,
                         "sparsity": res.sparsity, "accuracy": res.accuracy, "pu": res.pu, "pe": res.pe,
                         "epochs": res.epochs, "spec_edges": target})
    print(f"\n{'task':12s} {'seed':>4s} {'s':>6s} {'edges':>5s} {'spec':>6s} {'sparsity %':>10s} {'acc %':>6s} "
          f"{'Pu':>5s} {'Pe':>4s} {'epochs':>6s}")
    for r in rows:
        print(f"{r['task']:12s} {r['seed']:>4d} {r['seconds']:>6.1f} {r['edges']:>5d} {r['spec_edges']:>6s} "
              f"{r['sparsity']:>10.2f} {100 * r['accuracy']:>6.1f} {r['pu']:>5} {r['pe']:>4} {r['epochs']:>6d}")
    return rows


def _row(rows, grid, name, threads, times, res) -> None:
    r = {"case": name, "threads": threads, "median_s": statistics.median(times), "min_s": min(times),
         "edges": res.edges, "sparsity": res.sparsity, "accuracy": res.accuracy, "pu": res.pu, "pe": res.pe,
         "phases": res.timings}
    grid.setdefault(threads, r["median_s"])
    rows.append(r)
    print(f"{r['case']:44s} {threads:>3d} {r['median_s']:>9.2f} {r['min_s']:>7.2f} "
          f"{r['median_s'] / grid[threads]:>6.2f} {r['edges']:>5d} {r['sparsity']:>10.2f} "
          f"{100 * r['accuracy']:>6.1f} {r['pu']:>5} {r['pe']:>4}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to time")
    p.add_argument("--unbatched", action="store_true", help="also time the grid run cell by cell (slow)")
    p.add_argument("--exemplars", action="store_true", help="also sculpt the 4 exemplars for seeds 0, 1, 2, 5")
    p.add_argument("--json", help="write the rows to this JSON file")
    args = p.parse_args(argv)
    task = load_task("[4,2,4]")
    x, y = task.truth_table()
    widths = [4, 24, 24, 4]
    train = task_train_config(task, 2)
    rows, grid = [], {}
    print(f"[4,2,4] on [4,24,24,4], seed 0, {args.repeats} repeats; ratio = time / full grid at the same threads")
    print(f"{'case':44s} {'thr':>3s} {'median s':>9s} {'min s':>7s} {'ratio':>6s} {'edges':>5s} "
          f"{'sparsity %':>10s} {'acc %':>6s} {'Pu':>5s} {'Pe':>4s}", flush=True)
    for threads in args.threads:
        cases = [("full grid (14 Pu x 5 Pe)", SculptConfig(train=train, threads=threads)),
                 ("one unit + one edge search (Pu 5, Pe 0.5)",
                  SculptConfig(train=train, unit_steps=(5.0,), edge_steps=(0.5,), threads=threads))]
        for name, cfg in cases:
            _run(x, y, cfg, widths)                                   # warm-up
            runs = [_run(x, y, cfg, widths) for _ in range(args.repeats)]
            _row(rows, grid, name, threads, [t for t, _ in runs], runs[-1][1])
        if args.unbatched:
            t, res = _unbatched(x, y, SculptConfig(train=train, threads=threads), widths)
            _row(rows, grid, "grid cell by cell, unbatched (70 runs)", threads, [t], res)
    if args.exemplars:
        rows += _exemplars()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
