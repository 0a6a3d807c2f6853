"""``sculpting``'s per-layer clustering against the scikit-learn reference of
``tests/modgraph/detect/test_sculpting_vs_sklearn.py`` on many random sparse masks (issue 15).

Three mask families: ``small`` (the test's: 3-8 inputs, 1-3 hidden layers of 3-8 units, density
0.2-0.5), ``wide`` (4-8 inputs, 1-3 hidden layers of 4-12 units, 2-8 outputs, density 0.1-0.4)
and ``boolean`` (4 inputs, 1-3 hidden layers of 8/12/16/24 units, 2/4/8 outputs, density
0.03-0.15, like heavily pruned Boolean-task nets). Prints, per family, the masks, the layers
compared (condensed, >= 2 units), the layers whose partition differs, and seconds. Usage::

    nice -n 10 python benchmarks/sculpting_vs_sklearn.py [--masks 5000] [--seed 0]
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from modgraph.detect.sculpting import cluster_layer
from modgraph.partition import canonical_labels

ROOT = Path(__file__).resolve().parents[1]


def _wide(rng):
    w = [int(rng.integers(4, 9))] + [int(rng.integers(4, 13))] * int(rng.integers(1, 4)) + [int(rng.integers(2, 9))]
    d = rng.uniform(0.1, 0.4)
    return [rng.random((w[i + 1], w[i])) < d for i in range(len(w) - 1)]


def _boolean(rng):
    w = [4] + [int(rng.choice([8, 12, 16, 24]))] * int(rng.integers(1, 4)) + [int(rng.choice([2, 4, 8]))]
    d = rng.uniform(0.03, 0.15)
    return [rng.random((w[i + 1], w[i])) < d for i in range(len(w) - 1)]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--masks", type=int, default=5000, help="masks per family (default 5000)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests" / "modgraph" / "detect"))
    ref = importlib.import_module("test_sculpting_vs_sklearn")
    warnings.filterwarnings("ignore", message=".*uncondensed distance matrix")
    print(f"{'family':<8} {'masks':>6} {'layers':>7} {'differ':>7} {'seconds':>8}")
    for name, gen in (("small", ref.random_masks), ("wide", _wide), ("boolean", _boolean)):
        rng = np.random.default_rng(args.seed)
        layers = differ = 0
        t0 = time.perf_counter()
        for _ in range(args.masks):
            for feats in ref.layer_features(gen(rng)):
                ours = cluster_layer(feats, feats.shape[1], ref.MM)[0]
                theirs = ref.sk_cluster_layer(feats, feats.shape[1], one_tree=True)
                layers += 1
                differ += not np.array_equal(canonical_labels(ours), canonical_labels(theirs))
        print(f"{name:<8} {args.masks:>6} {layers:>7} {differ:>7} {time.perf_counter() - t0:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
