"""Per-task overhead of the study engines (issue 17): N runs of tiny networks, pool vs Dask.

Every run analyses a [4,6,3] random network with ``modularity`` (a few ms of work), so wall time
per run is mostly the engine's own cost plus storing the result. Prints, per engine, the wall
time of the whole study, per run, and the sum of the in-worker analysis seconds, side by side.

Usage: .venv/bin/python benchmarks/study_overhead.py [--runs 1000] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from modgraph.io import save
from modgraph.study import parse_spec, run_study
from modgraph.testing import random_network


def _spec(root: Path, runs: int):
    n_files = max(1, runs // 10)
    for i in range(n_files):
        save(random_network([4, 6, 3], density=0.6, seed=i), root / f"n{i:04d}.h5")
    return parse_spec({"inputs": [{"paths": ["n*.h5"]}], "methods": ["modularity"],
                       "study": {"seeds": runs // n_files}}, base=root)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="study-overhead-"))
    spec = _spec(root, args.runs)
    print(f"| engine | runs | wall s | ms / run | analysis s (sum) | median analysis ms | ratio to pool |")
    print("|---|---|---|---|---|---|---|")
    base = None
    for name, kw in (("inline", {"workers": 1}), ("pool", {"workers": args.workers}),
                     ("dask local", {"dask": "local", "workers": args.workers})):
        t0 = time.perf_counter()
        out = run_study(spec, root / name.replace(" ", "-"), progress=False, report=False, **kw)
        wall = time.perf_counter() - t0
        secs = [json.loads(l)["seconds"] for l in (out.out / "runs.jsonl").read_text().splitlines()]
        base = wall if name == "pool" else base
        ratio = "–" if base is None else f"{wall / base:.2f}"
        print(f"| {name} | {out.computed} | {wall:.2f} | {1000 * wall / out.computed:.2f} | {sum(secs):.2f} | "
              f"{1000 * statistics.median(secs):.2f} | {ratio} |")
    same = len({(root / n / "runs.csv").read_bytes() for n in ("inline", "pool", "dask-local")}) == 1
    print(f"\nrun tables identical across engines: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
