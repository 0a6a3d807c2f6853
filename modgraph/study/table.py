"""Many network files × detection methods → one list of rows in memory (for benchmarks).

``modgraph study`` (:func:`modgraph.study.run_study`) is the loss-free, resumable form; this is
the in-memory one the recovery benchmarks use. Each row is one (file, method) analysis flattened by :func:`modgraph.analyze.summary_row`,
plus whatever the caller attaches (task, depth, width, seed). Work runs on the study's
engines (:mod:`modgraph.study.engines`): a local process pool (graph-tool pinned to one OpenMP
thread per worker, as ``ecosystem-facts.md`` §6 advises) or the calling process. Each row also carries
``seconds``: the wall time of that one analysis (load, condense, detect, score).

Examples
--------
>>> rows = [{"task": "a", "method": "m", "success": 1}, {"task": "a", "method": "m", "success": 0}]
>>> success_table(rows, ["task"], "method")
{('a',): {'m': (0.5, 2)}}
"""
from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from modgraph.study.engines import make_engine

__all__ = ["analyze_many", "success_table"]


def _one(job) -> dict:
    path, method, seed, extra, criterion = job
    from modgraph.analyze import analyze_file, summary_row

    start = time.perf_counter()
    try:
        row = summary_row(analyze_file(path, method=method, seed=seed))
    except Exception as err:                       # a method failing on one file is a result too
        row = {"file": Path(path).name, "method": method, "seed": seed, "error": f"{type(err).__name__}: {err}"}
    row["seconds"] = round(time.perf_counter() - start, 5)
    row.update(extra)
    if criterion:
        row["success"] = row.get(criterion, 0)
    return row


def analyze_many(jobs, *, methods, seed: int = 1, workers: int = 1, progress: bool = True) -> list[dict]:
    """Analyse every ``(path, extra_columns)`` of ``jobs`` with every method in ``methods``.

    ``extra_columns`` may carry ``"criterion"``: the name of the criterion to report as
    ``success`` (e.g. one metric of the overlap sweep); it is removed from the row.
    """
    tasks = []
    for path, extra in jobs:
        extra = dict(extra)
        criterion = extra.pop("criterion", None)
        for method in methods:
            tasks.append((str(path), method, seed, extra, criterion))
    bar = tqdm(total=len(tasks), desc="analyze", unit="run", disable=not progress)
    rows = [None] * len(tasks)
    engine = make_engine(workers=workers)
    try:
        for i, row in engine.map(_one, tasks):
            rows[i] = row
            bar.update()
    finally:
        engine.close()
        bar.close()
    return rows


def success_table(rows, group_by, column) -> dict:
    """{group key tuple: {column value: (mean success, n)}} over rows with a numeric success."""
    table: dict = {}
    for r in rows:
        s = r.get("success")
        if s in ("", None):
            continue
        key = tuple(r[g] for g in group_by)
        acc = table.setdefault(key, {}).setdefault(r[column], [0.0, 0])
        acc[0] += float(s)
        acc[1] += 1
    return {k: {c: (v[0] / v[1], v[1]) for c, v in cols.items()} for k, cols in table.items()}
