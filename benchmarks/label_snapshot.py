"""Labels of the graph-tool detectors on a broad set of networks, to check a refactor changes none.

Records, for every network below and every method of --methods at every seed of --seeds, the
labels (and, for ``subfunctions``, its ``stats``) into a JSON file; with --compare it also
prints, per method, how many of the runs give the same labels as a snapshot taken before (and
names every run that does not). The networks:

- the ``make demo`` network (``out/demo/run/network.h5``, when it exists);
- Boolean networks sculpted with one (Pu, Pe) = (10, 0.5) (``trainers.study.sculpt_cells``,
  ``grid=False``) into --cache, from the recovery grid's families (exemplars at 1-3 hidden
  layers, seeds 0 and 1; reuse, overlap and hierarchy tasks at 2-3), and 12 more over the full
  (Pu, Pe) grid, as the recovery table's are (about 4 minutes of CPU in all); a cell already
  in the cache is reused, and the network's weight digest is recorded, so re-sculpting into a fresh
  cache shows whether the trainers still produce the same networks;
- planted layered graphs, disjoint MLPs, random layered graphs and random sparse MLPs
  (``modgraph.planted``, ``modgraph.testing``), and the hand-built nets of spec §9.2.

Usage: nice -n 10 .venv/bin/python benchmarks/label_snapshot.py --cache /tmp/nets --out after.json
       [--compare before.json] [--methods subfunctions,sculpting,modularity,sbm,nested-sbm] [--seeds 0,1,2]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from modgraph.detect import detect
from modgraph.graph import build_unit_graph
from modgraph.io import load
from modgraph.planted import disjoint_mlps, planted_layered_graph, random_layered_graph
from modgraph.testing import random_network, sculpted_networks

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("subfunctions", "sculpting", "modularity", "sbm", "nested-sbm")


def boolean_cells() -> list[tuple]:
    """(task, hidden, seed) cells from the recovery grid's families (about 40)."""
    cells = [(t, (24,) * d, s) for t in ("input-separable", "reused", "both", "none") for d in (1, 2, 3)
             for s in (0, 1)]
    cells += [(f"reuse-u{u}", (24,) * d, 0) for u in (1, 2, 4, 6) for d in (2, 3)]
    cells += [(f"overlap-o{o}-u{u}", (24, 24), 0) for o in range(5) for u in (2, 6)]
    cells += [(f"hierarchy-u{u}", (36,) * d, 0) for u in (1, 2, 4, 6, 8) for d in (2, 3)]
    return cells


def grid_cells() -> list[tuple]:
    """(task, hidden, seed) cells sculpted over the full (Pu, Pe) grid, as the recovery table's are."""
    return [(t, (24, 24), s) for t in ("input-separable", "reused", "both", "none") for s in (0, 1)] + [
        ("reuse-u2", (24, 24), 0), ("overlap-o3-u4", (24, 24), 0), ("overlap-o1-u6", (24,), 0),
        ("hierarchy-u4", (36, 36), 0)]


def digest(net) -> str:
    """sha256 of every layer's CSR arrays and bias: equal digests, bit-identical networks."""
    h = hashlib.sha256()
    for layer in net.layers:
        w = layer.weight
        for a in (w.data, w.indices, w.indptr, layer.bias):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def networks(cache: Path) -> dict:
    """name -> (UnitGraph, weight digest or None)."""
    from trainers.study import sculpt_cells

    out = {}
    demo = ROOT / "out" / "demo" / "run" / "network.h5"
    if demo.exists():
        net = load(demo)
        out["demo"] = (build_unit_graph(net), digest(net))
    for grid, cells in ((False, boolean_cells()), (True, grid_cells())):
        for path, info in sculpt_cells(cells, cache / ("grid" if grid else "one"), grid=grid, progress=False):
            net = load(path)
            name = (f"{info['task']} {'x'.join([str(info['width'])] * info['depth'])} s{info['seed']}"
                    + (" grid" if grid else ""))
            out[name] = (build_unit_graph(net), digest(net))
    for n_modules, width, ratio, seed in [(2, 12, 10, 0), (2, 12, 4, 1), (3, 12, 10, 2), (3, 24, 6, 3),
                                          (4, 24, 10, 4), (4, 24, 3, 5), (2, 24, 2, 6), (3, 18, 8, 7)]:
        g, _ = planted_layered_graph(n_layers=4, layer_width=width, n_modules=n_modules, ratio=ratio,
                                     mean_degree=6.0, seed=seed)
        out[f"planted {n_modules}x{width} r{ratio} s{seed}"] = (g, None)
    for widths, k in [([3, 4, 2], 2), ([4, 6, 6, 2], 3)]:
        net, _ = disjoint_mlps(widths, n_modules=k)
        out[f"disjoint {widths} x{k}"] = (build_unit_graph(net), digest(net))
    for width, fan_in, seed in [(10, 2, 0), (16, 3, 1)]:
        out[f"random layered {width} fan{fan_in} s{seed}"] = (
            random_layered_graph(n_layers=4, layer_width=width, fan_in=fan_in, seed=seed), None)
    for widths, density, seed in [([8, 16, 16, 4], 0.1, 0), ([8, 16, 16, 4], 0.2, 1), ([8, 16, 16, 4], 0.3, 2),
                                  ([6, 12, 3], 0.2, 3), ([10, 20, 20, 20, 5], 0.1, 4), ([10, 20, 20, 20, 5], 0.15, 5),
                                  ([4, 8, 8, 4], 0.4, 6), ([12, 24, 6], 0.1, 7)]:
        net = random_network(widths, density=density, seed=seed)
        out[f"random mlp {widths} d{density} s{seed}"] = (build_unit_graph(net), digest(net))
    for name, (net, *_rest) in sculpted_networks().items():
        out[f"spec 9.2 {name}"] = (build_unit_graph(net), digest(net))
    return out


def snapshot(nets: dict, methods, seeds) -> tuple[dict, dict]:
    """Labels per network and run, and seconds per method."""
    runs, seconds = {}, {m: 0.0 for m in methods}
    for name, (g, dig) in nets.items():
        rec = {"digest": dig, "runs": {}}
        for m in methods:
            for s in seeds:
                t0 = time.process_time()
                try:
                    p = detect(g, method=m, seed=s)
                    run = {"labels": p.labels.tolist()}
                    if m == "subfunctions":
                        run["stats"] = p.stats
                except Exception as err:          # recorded, so a changed error shows too
                    run = {"error": f"{type(err).__name__}: {err}"}
                seconds[m] += time.process_time() - t0
                rec["runs"][f"{m} s{s}"] = run
        runs[name] = rec
    return runs, seconds


def compare(before: dict, after: dict, methods) -> list[str]:
    """Print one row per method (same / changed / missing) and return the changed runs."""
    changed, lines = [], []
    print(f"{'method':14s} {'same':>5s} {'changed':>7s} {'missing':>7s}")
    for m in methods:
        same = diff = missing = 0
        for name, rec in after.items():
            for key, run in rec["runs"].items():
                if not key.startswith(m + " s"):
                    continue
                old = before.get(name, {}).get("runs", {}).get(key)
                if old is None:
                    missing += 1
                elif {k: v for k, v in old.items() if k != "stats"} == {k: v for k, v in run.items() if k != "stats"}:
                    same += 1
                    if old.get("stats") != run.get("stats"):
                        lines.append(f"  stats differ (labels same): {name} / {key}")
                else:
                    diff += 1
                    changed.append(f"{name} / {key}")
        print(f"{m:14s} {same:>5d} {diff:>7d} {missing:>7d}")
    digests = [n for n, r in after.items() if n in before and r["digest"] != before[n]["digest"]]
    print(f"networks: {len(after)}, weight digests changed: {len(digests)} {digests if digests else ''}")
    for line in lines + [f"  labels differ: {c}" for c in changed]:
        print(line)
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, help="folder of the sculpted Boolean networks (reused when present)")
    ap.add_argument("--out", required=True, help="JSON file for the snapshot")
    ap.add_argument("--compare", help="an earlier snapshot to compare with")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    t0 = time.process_time()
    nets = networks(Path(args.cache))
    print(f"{len(nets)} networks ready, {time.process_time() - t0:.0f} s CPU")
    runs, seconds = snapshot(nets, methods, seeds)
    Path(args.out).write_text(json.dumps(runs, indent=0, sort_keys=True) + "\n")
    print("CPU seconds per method: " + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items()))
    if args.compare:
        return 1 if compare(json.loads(Path(args.compare).read_text()), runs, methods) else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
