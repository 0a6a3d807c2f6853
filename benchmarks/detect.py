"""Time every detection method, and our overhead over the raw graph-tool / igraph calls.

    python benchmarks/detect.py                       # 10^3 and 10^4 units + the pruned MNIST MLP
    python benchmarks/detect.py --sizes 1000 --repeats 3
    python benchmarks/detect.py --sizes --methods nested-sbm   # only the pruned MNIST MLP
    python benchmarks/detect.py --large               # also 10^5 units (modularity, spectral only)

Graphs: random layered graphs of 10 layers, each unit with 10 random in-edges from the layer
below (about 9 edges per unit), and a 784-256-256-256-256-10 MLP with glorot-uniform weights
pruned to 10 % per layer by magnitude. For ``sbm`` / ``nested-sbm`` the raw call is one
``minimize_(nested_)blockmodel_dl``, seeded like our first restart, with the model our default
fits (level-0 blocks confined to one layer and connected component), on a prebuilt graph;
``ours x1`` is our method with ``n_restarts=1`` (condensation, graph build, the same fit, greedy
refinement, merge, upper levels), so ``ours x1 / raw`` is our overhead; ``ours`` is the default
(up to 3 restarts, stopping when two agree). For ``modularity`` the raw calls are igraph's
Leiden and graph-tool's ``ModularityState``, each scored with ``gt.modularity`` (|w|). Medians
over ``--repeats``; a flat SBM on 10^5 units takes tens of minutes, so block models stay out of
``--large``. Writes JSON and CSV to ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np

from modgraph.detect import _gt, detect
from modgraph.detect.sbm import layer_component_label
from modgraph.graph import UnitGraph, build_unit_graph, condense
from modgraph.io import atomic_path
from modgraph.network import Layer, LayeredNetwork
from modgraph.planted import random_layered_graph


def pruned_mnist_mlp(*, seed: int = 0, keep: float = 0.1) -> UnitGraph:
    """784-256x4-10, glorot-uniform weights, the largest ``keep`` of |w| kept in every layer."""
    rng = np.random.default_rng(seed)
    widths = [784, 256, 256, 256, 256, 10]
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = rng.uniform(-1, 1, (n_out, n_in)) * np.sqrt(6 / (n_in + n_out))
        layers.append(Layer.from_dense(w, mask=np.abs(w) > np.quantile(np.abs(w), 1 - keep)))
    return build_unit_graph(LayeredNetwork(layers))


def _time(fn, repeats: int):
    """Median wall-clock and CPU seconds of ``repeats`` calls, and the last result.

    CPU time (this process and its threads) is what the call costs on a quiet machine; on a
    shared machine the wall clock also counts the time other jobs held the core.
    """
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def _raw_sbm(work: UnitGraph, nested: bool):
    import graph_tool.all as gt          # benchmarks may call graph-tool directly; modgraph may not

    g = _gt.to_graph_tool(work.n_units, work.src, work.dst, work.weight, layer=work.layer)
    pc = g.new_vertex_property("int")
    pc.a = layer_component_label(work)
    minimize = gt.minimize_nested_blockmodel_dl if nested else gt.minimize_blockmodel_dl

    def run():
        _gt.seed_all(_gt.restart_seeds(1, 1)[0])       # the seed of our first restart: same trajectory
        return minimize(g, state_args=dict(pclabel=pc),
                        multilevel_mcmc_args=_gt.multilevel_args(5)).entropy()   # our default sweeps
    return run


def _raw_modularity(work: UnitGraph):
    import igraph as ig

    g = _gt.to_graph_tool(work.n_units, work.src, work.dst, work.weight)
    ig_graph = ig.Graph(n=work.n_units, edges=np.column_stack([work.src, work.dst]).tolist())
    w = work.weight.tolist()

    def leiden():
        ig.set_random_number_generator(random.Random(1))
        labels = ig_graph.community_leiden(objective_function="modularity", weights=w, n_iterations=-1).membership
        return _gt.modularity(g, labels)

    def modularity_state():
        return _gt.modularity(g, _gt.modularity_state(g, seed=1))
    return {"raw igraph Leiden": leiden, "raw gt ModularityState": modularity_state}


def _rows_for(name: str, graph: UnitGraph, methods, repeats: int):
    work = condense(graph)
    base = {"graph": name, "n_units": graph.n_units, "n_edges": graph.n_edges}
    for method in methods:
        options = {"k": 12} if method == "spectral" else {}
        t, cpu, p = _time(lambda: detect(graph, method=method, seed=1, **options), repeats)
        row = {**base, "method": method, "variant": "ours", "seconds": t, "cpu_seconds": cpu, "n_modules": p.n_modules,
               "modularity": p.stats.get("modularity"), "description_length": p.stats.get("description_length")}
        yield row
        if method in ("sbm", "nested-sbm"):
            t1, cpu1, _ = _time(lambda: detect(graph, method=method, seed=1, n_restarts=1), repeats)
            raw, cpu_raw, dl = _time(_raw_sbm(work, method == "nested-sbm"), repeats)
            yield {**base, "method": method, "variant": "ours x1", "seconds": t1, "cpu_seconds": cpu1,
                   "ratio_to_raw": t1 / raw}
            yield {**base, "method": method, "variant": "raw graph-tool", "seconds": raw, "cpu_seconds": cpu_raw,
                   "description_length": dl}
            row["ratio_to_raw"] = t / raw
        if method == "modularity":
            for variant, fn in _raw_modularity(work).items():
                t_raw, cpu_raw, q = _time(fn, repeats)
                yield {**base, "method": method, "variant": variant, "seconds": t_raw, "cpu_seconds": cpu_raw,
                       "modularity": q}


def _print(rows) -> None:
    print(f"{'graph':<14} {'units':>7} {'edges':>8} {'method':<11} {'variant':<24} {'seconds':>9} "
          f"{'cpu s':>8} {'ratio':>6} {'Q':>6} {'modules':>7}")
    for r in rows:
        ratio = f"{r['ratio_to_raw']:.2f}" if r.get("ratio_to_raw") is not None else ""
        q = f"{r['modularity']:.3f}" if r.get("modularity") is not None else ""
        print(f"{r['graph']:<14} {r['n_units']:>7} {r['n_edges']:>8} {r['method']:<11} {r['variant']:<24} "
              f"{r['seconds']:>9.2f} {r['cpu_seconds']:>8.2f} {ratio:>6} {q:>6} {r.get('n_modules', ''):>7}")


def _write(rows, out: Path) -> None:
    with atomic_path(out / "detect.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=1))
    keys = sorted({k for r in rows for k in r})
    with atomic_path(out / "detect.csv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000],
                    help="units of the layered graphs (none: only the pruned MNIST MLP)")
    ap.add_argument("--large", action="store_true", help="add 10^5 units (modularity and spectral only)")
    ap.add_argument("--repeats", type=int, default=1, help="timings per cell (median)")
    ap.add_argument("--methods", nargs="+", default=["sbm", "nested-sbm", "modularity", "spectral", "sculpting"])
    ap.add_argument("--no-mnist", action="store_true", help="skip the pruned 784-256x4-10 MLP")
    ap.add_argument("--out", default="out/benchmarks", help="folder for detect.json / detect.csv")
    args = ap.parse_args(argv)
    jobs = [(f"layered-{n}", lambda n=n: random_layered_graph(n_layers=10, layer_width=n // 10, fan_in=10, seed=0),
             args.methods) for n in args.sizes]
    if not args.no_mnist:
        jobs.append(("mnist-mlp-90%", pruned_mnist_mlp, args.methods))
    if args.large:
        big = lambda: random_layered_graph(n_layers=10, layer_width=10000, fan_in=10, seed=0)  # noqa: E731
        jobs.append(("layered-100000", big,
                     [m for m in args.methods if m in ("modularity", "spectral")]))
    rows = []
    for name, make, methods in tqdm(jobs, desc="graphs"):
        for row in _rows_for(name, make(), methods, args.repeats):
            rows.append(row)
            _write(rows, Path(args.out))         # after every cell: a killed run keeps what it measured
    _print(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
