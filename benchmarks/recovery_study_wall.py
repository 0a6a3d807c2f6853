"""Wall time of the recovery study on the study engine beside benchmarks/recovery.py (issue 17).

On a slice of the recovery grid (the full cache is ~2 CPU-hours to sculpt), times, with the same
number of workers: recovery.py's analysis (``analyze_many`` + ``cell_rates``, rows in memory) and
the same study run by ``run_study`` on the spec ``recovery.py --write-spec`` writes (every run
stored as it finishes, runs.csv/runs.jsonl/report.html rebuilt, then ``--from-study``'s
``rows_from_study`` + ``cell_rates``), plus a rerun of the study (everything stored: skipped).
Prints medians over --repeats, the ratio to recovery.py, and whether both give the same cells.
The slice's networks are sculpted once into --cache with one (Pu, Pe) step (as the tests do),
not the full grid: the analysis, not the sculpting, is what is timed.

Usage: nice -n 10 .venv/bin/python benchmarks/recovery_study_wall.py [--repeats 3] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from modgraph.study import analyze_many, parse_spec, run_study
from recovery import (ROOT, cell_rates, default_methods, published_cells, rows_from_study,  # benchmarks/
                      study_doc)
from trainers.study import sculpt_cells

#: 24 networks: six tasks of four families, two widths, depth 2, seeds 0 and 1
SLICE = [(t, (w, w), s) for t in ("input-separable", "both", "reuse-u2", "overlap-o1-u2", "overlap-o3-u4",
                                  "hierarchy-u2") for w in (8, 12) for s in (0, 1)]


def _script(runs, methods, workers):
    rows = analyze_many(runs, methods=methods, seed=1, workers=workers, progress=False)
    return cell_rates(rows, published_cells(), methods)


def _study(spec, out, methods, workers):
    run_study(spec, out, workers=workers, progress=False)
    rows = rows_from_study(json.loads(l) for l in (Path(out) / "runs.jsonl").read_text().splitlines())
    return cell_rates(rows, published_cells(), methods)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache", default=str(ROOT / "out" / "benchmarks" / "recovery-slice"))
    args = p.parse_args(argv)
    methods = default_methods()
    runs = sculpt_cells(SLICE, args.cache, grid=False, progress=False)     # cached after the first time
    spec = parse_spec(study_doc(SLICE, methods, seed=1), source="<recovery slice>", base=args.cache)
    n = len(runs) * len(methods)
    times = {"recovery.py (analyze_many)": [], "modgraph study (fresh)": [], "modgraph study (rerun, all stored)": []}
    same = True
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ref = _script(runs, methods, args.workers)
        times["recovery.py (analyze_many)"].append(time.perf_counter() - t0)
        out = Path(tempfile.mkdtemp(prefix="recovery-study-"))
        try:
            t0 = time.perf_counter()
            got = _study(spec, out, methods, args.workers)
            times["modgraph study (fresh)"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again = _study(spec, out, methods, args.workers)
            times["modgraph study (rerun, all stored)"].append(time.perf_counter() - t0)
        finally:
            shutil.rmtree(out)
        same &= ref == got == again
    base = statistics.median(times["recovery.py (analyze_many)"])
    print(f"{len(runs)} networks x {len(methods)} methods = {n} analyses, {args.workers} workers, "
          f"median of {args.repeats}")
    print("| path | median wall s | min s | ms / analysis | ratio to recovery.py |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.2f} | {min(ts):.2f} | {1000 * med / n:.1f} | {med / base:.2f} |")
    print(f"\ncells identical (recovery.py vs study vs rerun): {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
