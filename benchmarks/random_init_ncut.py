"""Spectral n-cut of random-init (Glorot-uniform) 784-256×4-10 MLPs (clusterability.md §8.3, §10 B.6).

Published: k = 12 → 10.295 ± 0.032 (100 nets, P2's released results; a recent scikit-learn
recomputation gives 10.27 ± 0.015); k = 4 → 2.36 ± 0.01. Acceptance: 10.30 ± 0.05 and
2.30–2.45. Usage: ``python benchmarks/random_init_ncut.py [--nets 20] [--n-init 25]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from modgraph.detect.spectral import spectral
from modgraph.graph import build_unit_graph
from modgraph.network import Layer, LayeredNetwork

WIDTHS = (784, 256, 256, 256, 256, 10)


def glorot_mlp(seed: int) -> LayeredNetwork:
    rng = np.random.default_rng(seed)
    layers = []
    for a, b in zip(WIDTHS[:-1], WIDTHS[1:]):
        lim = np.sqrt(6.0 / (a + b))
        layers.append(Layer.from_dense(rng.uniform(-lim, lim, (b, a))))
    return LayeredNetwork(layers)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nets", type=int, default=20)
    p.add_argument("--n-init", type=int, default=25)
    args = p.parse_args(argv)
    rows = {12: [], 4: []}
    t0 = time.perf_counter()
    for seed in range(args.nets):
        g = build_unit_graph(glorot_mlp(seed))
        for k in rows:
            rows[k].append(spectral(g, k=k, seed=seed, n_init=args.n_init).stats["ncut"])
    print(f"{args.nets} random-init nets, n_init {args.n_init}, {time.perf_counter() - t0:.0f} s")
    for k, want in ((12, "10.295 ± 0.032 (accept 10.25..10.35)"), (4, "≈2.36 ± 0.01 (accept 2.30..2.45)")):
        v = np.array(rows[k])
        print(f"k = {k:2d}: n-cut {v.mean():.3f} ± {v.std():.3f} (min {v.min():.3f}, max {v.max():.3f}); "
              f"published {want}")


if __name__ == "__main__":
    main()
