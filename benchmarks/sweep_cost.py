"""What sculpting the recovery grid cost, from the networks' own timings (issue 15).

Every network that ``benchmarks/recovery.py`` sculpts records the seconds of its dense training, unit
pruning and edge pruning (``metadata["timings"]``, wall seconds of one process with one torch
thread, so CPU seconds when the process had a core to itself). This sums them per task family and
over the whole cache, and, with ``--wall S`` (the measured wall seconds of the sweep) and
``--workers N``, sets the sum beside N × the wall time (how busy the workers were).

Usage: .venv/bin/python benchmarks/sweep_cost.py [--cache out/study] [--wall 5400 --workers 2]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from modgraph.io import load

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("exemplars", "reuse", "overlap", "hierarchy")


def family(task: str) -> str:
    for f in FAMILIES[1:]:
        if task.startswith(f):
            return f
    return FAMILIES[0]


def cell_seconds(cache: Path) -> dict[str, list[float]]:
    """Per family, each network's summed sculpting seconds (dense + unit + edge)."""
    out: dict[str, list[float]] = {f: [] for f in FAMILIES}
    for path in sorted(cache.glob("*/*/network.h5")):
        timings = load(path, isolate=False).metadata.get("timings")     # our own cache: trusted
        if not timings:
            raise SystemExit(f"{path}: no timings in its metadata (not written by trainers.export)")
        out[family(path.parts[-3])].append(float(sum(timings.values())))
    return out


def table(per_family: dict[str, list[float]], *, wall: float | None, workers: int) -> list[str]:
    lines = ["| family | networks | sculpting CPU-h | median s / network | max s / network |", "|---|---|---|---|---|"]
    every = [s for v in per_family.values() for s in v]
    for name, secs in [*per_family.items(), ("all", every)]:
        if secs:
            lines.append(f"| {name} | {len(secs)} | {sum(secs) / 3600:.2f} | {statistics.median(secs):.1f} | "
                         f"{max(secs):.1f} |")
    if wall and every:
        lines.append("")
        lines.append(f"wall {wall / 3600:.2f} h on {workers} workers: the networks' seconds are "
                     f"{sum(every) / (wall * workers):.0%} of {workers} × wall")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=str(ROOT / "out" / "study"))
    p.add_argument("--wall", type=float, help="the sweep's measured wall seconds")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    per_family = cell_seconds(Path(args.cache))
    if not any(per_family.values()):
        print(f"{args.cache}: no sculpted networks (*/*/network.h5)", file=sys.stderr)
        return 1
    print("\n".join(table(per_family, wall=args.wall, workers=args.workers)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
