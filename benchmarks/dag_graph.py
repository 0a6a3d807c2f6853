"""Cost of the unit graph of a ResNet-50-sized DAG in each view, and of what comes after it.

    nice -n 10 python benchmarks/dag_graph.py [--repeats 3] [--size 64] [--methods modularity,spectral]

The network is ``benchmarks/dag_edges.py``'s ResNet-50 (DagBuilder, random float32 weights, BN
after every conv). For each view (split, coupled, filan) prints the median seconds of
``build_unit_graph``, ``condense`` and the aggregated picture (``draw_network``, PNG), with the
graph's size, and the seconds of one run of each ``--methods`` detector on the filan view
(spectral with k = 12).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from dag_edges import resnet50  # noqa: E402

from modgraph.detect import detect  # noqa: E402
from modgraph.graph import build_unit_graph, condense  # noqa: E402
from modgraph.report.draw import draw_network  # noqa: E402


def _median(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--methods", default="modularity,spectral")
    args = ap.parse_args(argv)
    net = resnet50(args.size)
    print(f"ResNet-50 DAG: {len(net.groups)} groups, {net.n_units} units")
    print(f"{'view':<8} {'units':>7} {'edges':>10} {'layers':>6} {'build s':>8} {'condense s':>10} {'draw s':>7}")
    graphs = {}
    for view in ("split", "coupled", "filan"):
        tb, g = _median(lambda: build_unit_graph(net, view=view), args.repeats)
        tc, c = _median(lambda: condense(g), args.repeats)
        td, _ = _median(lambda: draw_network(c, np.zeros(c.n_units, int)), 1)
        graphs[view] = c
        print(f"{view:<8} {g.n_units:>7} {g.n_edges:>10} {g.n_layers:>6} {tb:>8.2f} {tc:>10.2f} {td:>7.2f}")
    print(f"{'method (filan view)':<22} {'seconds':>8} {'modules':>8}")
    for m in filter(None, args.methods.split(",")):
        opts = {"k": 12} if m == "spectral" else {}
        t, p = _median(lambda: detect(graphs["filan"], method=m, seed=0, **opts), 1)
        print(f"{m:<22} {t:>8.2f} {p.n_modules:>8}")


if __name__ == "__main__":
    main()
