"""Cost of the null test on CNN channel graphs (issue 18): modgraph against scikit-learn, and a ResNet-50.

    nice -n 10 python benchmarks/cnn_significance_perf.py small  [NET.h5] [--shuffles 50] [--k 12] [--results F]
    nice -n 10 python benchmarks/cnn_significance_perf.py resnet [--shuffles 20] [--k 12] [--results F]

``small``: the channel graph (``view="filan"``, matrix 1-norm) of a random-init small CNN (default
``runs/cnn_clusterability/random/small-cnn-seed0.h5``, written by ``cnn_clusterability.py random``),
the true graph and ``--shuffles`` `layer` shuffles within each conv -> conv block (the per-shuffle
seeds of :mod:`modgraph.nulls`), each cleaned again. Both sides cluster the same graphs into k with
25 k-means restarts and the n-cut is computed the same way: modgraph's
:func:`~modgraph.detect.spectral.spectral` against scikit-learn's
``SpectralClustering(affinity="precomputed", n_init=25)`` (ARPACK shift-invert, ``KMeans``; the
papers' pipeline). One BLAS thread each, timed graph by graph, interleaved, so that load on the
machine hits both alike; then :func:`modgraph.nulls.significance` end to end.

``resnet``: ``benchmarks/dag_edges.py``'s ResNet-50 (DagBuilder, random He-scaled weights, BN after
every conv), its filan view (every conv's output channels; Adds walked through) and the null test
with ``--shuffles`` shuffles in-process, step by step as :func:`modgraph.nulls.significance` runs it
(same seeds): seconds per stage and the process's peak resident memory (``ru_maxrss``).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from modgraph.detect.spectral import ncut, spectral
from modgraph.graph import build_unit_graph, drop_isolated
from modgraph.io import load
from modgraph.nulls import shuffle_graph, significance

HERE = Path(__file__).parent


def _sklearn_ncut(graph, k: int, seed: int) -> float:
    from sklearn.cluster import SpectralClustering

    sc = SpectralClustering(n_clusters=k, affinity="precomputed", n_init=25, random_state=seed)
    return ncut(graph, sc.fit(graph.adjacency()).labels_)


def _graphs(graph, n: int, seed: int):
    yield graph
    for i in range(n):
        shuffle_seq, _ = np.random.SeedSequence([seed, i]).spawn(2)
        yield drop_isolated(shuffle_graph(graph, "layer", seed=shuffle_seq))


def _stamp(cmd: str) -> str:
    return (f"`python benchmarks/cnn_significance_perf.py {cmd}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
            f" load average {os.getloadavg()[0]:.1f} (2 cores shared with other jobs).")


def _write(results, name, body):
    if results:
        sys.path.insert(0, str(HERE))
        from results import replace_section

        replace_section(Path(results), name, body)
        print(f"wrote section {name} of {results}")


def small(args) -> None:
    graph = drop_isolated(build_unit_graph(load(args.net), view="filan", edge_norm="filan"))
    ours_t, theirs_t, ours_v, theirs_v = [], [], [], []
    with threadpool_limits(1):
        for i, g in enumerate(_graphs(graph, args.shuffles, args.seed)):
            t0 = time.perf_counter()
            ours_v.append(spectral(g, k=args.k, seed=args.seed + i).stats["ncut"])
            t1 = time.perf_counter()
            theirs_v.append(_sklearn_ncut(g, args.k, args.seed + i))
            t2 = time.perf_counter()
            ours_t.append(t1 - t0)
            theirs_t.append(t2 - t1)
    t0 = time.perf_counter()
    res = significance(graph, method="spectral", options={"k": args.k}, n_shuffles=args.shuffles, seed=args.seed)
    e2e = time.perf_counter() - t0
    o, s = np.array(ours_v), np.array(theirs_v)
    rel = np.abs(o - s) / s
    pct = lambda a, b: 100 * abs(a - b) / b               # noqa: E731
    lines = [f"{args.net}: channel graph {graph.n_units} units, {graph.n_edges} edges; k = {args.k}, true graph + "
             f"{args.shuffles} `layer` shuffles, 25 k-means restarts, 1 BLAS thread each", "",
             "| | modgraph | scikit-learn | ratio or difference |", "|---|---|---|---|",
             f"| total seconds (true + {args.shuffles}) | {sum(ours_t):.2f} | {sum(theirs_t):.2f} | "
             f"{sum(theirs_t) / sum(ours_t):.1f}x |",
             f"| median seconds per graph | {np.median(ours_t):.4f} | {np.median(theirs_t):.4f} | "
             f"{np.median(theirs_t) / np.median(ours_t):.1f}x |",
             f"| true n-cut | {o[0]:.4f} | {s[0]:.4f} | {pct(o[0], s[0]):.2f} % |",
             f"| null mean n-cut | {o[1:].mean():.4f} | {s[1:].mean():.4f} | {pct(o[1:].mean(), s[1:].mean()):.2f} % |",
             f"| per-graph n-cut difference (median / max) | | | {100 * np.median(rel):.2f} % / "
             f"{100 * rel.max():.2f} % |",
             f"| `significance()` end to end, in-process | {e2e:.2f} s | | p {res.p:.3f}, z "
             f"{'n/a' if res.z is None else f'{res.z:.2f}'} |"]
    print("\n".join(lines))
    _write(args.results, "cnn-perf-small", "\n".join(lines) + "\n\n" + _stamp("small"))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resnet(args) -> None:
    """What ``significance(graph, k, n_shuffles)`` does in-process (the same per-shuffle seeds), graph by
    graph, so that every step's seconds and the peak memory so far are printed as they come."""
    sys.path.insert(0, str(HERE))
    from dag_edges import resnet50

    rows = []
    t0 = time.perf_counter()
    net = resnet50(args.size)
    rows.append(("build the DagNetwork (DagBuilder)", time.perf_counter() - t0, _rss_mib()))
    t0 = time.perf_counter()
    graph = drop_isolated(build_unit_graph(net, view="filan", edge_norm="filan"))
    rows.append((f"filan view: {graph.n_units:,} units, {graph.n_edges:,} edges", time.perf_counter() - t0,
                 _rss_mib()))
    del net
    print(rows[-1], flush=True)
    t0 = time.perf_counter()
    p = spectral(graph, k=args.k, seed=0)
    true, solver = p.stats["ncut"], p.stats["solver"]
    rows.append((f"spectral on the true graph (solver {solver}, {p.stats['n_init']} k-means restarts)",
                 time.perf_counter() - t0, _rss_mib()))
    print(rows[-1], flush=True)
    null, per = [], []
    for i in range(args.shuffles):
        t1 = time.perf_counter()
        shuffle_seq, detect_seq = np.random.SeedSequence([0, i]).spawn(2)      # as modgraph.nulls does
        g = drop_isolated(shuffle_graph(graph, "layer", seed=shuffle_seq))
        null.append(spectral(g, k=args.k, seed=int(detect_seq.generate_state(1)[0] >> 1)).stats["ncut"])
        per.append(time.perf_counter() - t1)
        del g
        print(f"shuffle {i}: n-cut {null[-1]:.4f}, {per[-1]:.1f} s, peak RSS {_rss_mib():,.0f} MiB", flush=True)
    total = sum(r[1] for r in rows[2:]) + sum(per)
    rows.append((f"{args.shuffles} shuffles (shuffle, clean, spectral)", sum(per), _rss_mib()))
    nv = np.array(null)
    p_value, sd = (1 + int((nv < true).sum())) / (nv.size + 1), float(nv.std())
    z = "n/a" if sd == 0 else f"{(true - nv.mean()) / sd:.2f}"
    lines = ["| stage | seconds | peak RSS so far (MiB) |", "|---|---|---|"]
    lines += [f"| {name} | {sec:.1f} | {rss:,.0f} |" for name, sec, rss in rows]
    lines.append(f"| null test (true + {args.shuffles}), median per shuffle {np.median(per):.1f} s | {total:.1f} | |")
    lines += ["", f"ResNet-50 channel graph, random init, k = {args.k}: n-cut {true:.3f}, null {nv.mean():.3f} ± "
              f"{sd:.3f}, p {p_value:.3f}, z {z} ({args.shuffles} `layer` shuffles)."]
    print("\n".join(lines))
    _write(args.results, "cnn-perf-resnet", "\n".join(lines) + "\n\n" + _stamp(f"resnet --shuffles {args.shuffles}"))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="part", required=True)
    s = sub.add_parser("small")
    s.add_argument("net", nargs="?", default="runs/cnn_clusterability/random/small-cnn-seed0.h5")
    s.add_argument("--shuffles", type=int, default=50)
    s.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("resnet")
    r.add_argument("--shuffles", type=int, default=20)
    r.add_argument("--size", type=int, default=32, help="input side (the channel graph does not depend on it)")
    for q in (s, r):
        q.add_argument("--k", type=int, default=12)
        q.add_argument("--results", default=None)
    args = p.parse_args(argv)
    {"small": small, "resnet": resnet}[args.part](args)


if __name__ == "__main__":
    main()
