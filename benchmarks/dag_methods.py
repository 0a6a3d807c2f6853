"""Layer-aware methods on residual DAGs: time and recovery of planted modules, by size.

    nice -n 5 .venv/bin/python benchmarks/dag_methods.py [--sizes 4,16,64] [--blocks 4] [--modules 2]
        [--methods sculpting,subfunctions] [--lesion-max 16] [--out out/benchmarks/dag_methods.json]

The network (built with DagBuilder, no torch): an image input of 2 channels per module, a stem
conv, ``--blocks`` residual blocks (conv -> ReLU -> conv, Add with the block's input, ReLU), GAP
and a dense layer with 2 outputs per module. Every weight joins channels of one planted module
only (block-diagonal 3 x 3 kernels, 50 % of the kernel slices kept, seed 0), so the Adds make
skip edges and the right answer is known: one module per block of channels, inputs to outputs.
``--sizes`` are channels per module. Prints, per size and method: units, edges, seconds (one
run, wall) and the ARI with the planted modules; then, for sizes up to ``--lesion-max``, the
seconds of ``modgraph.lesion.importance`` (every module of every hidden group, 5 random lesions
each, 32 images of 8 x 8). Writes the rows as JSON.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from modgraph.dag_builder import DagBuilder
from modgraph.detect import detect
from modgraph.graph import build_unit_graph
from modgraph.lesion import importance
from modgraph.metrics import ari


def _blockdiag(rng, n_mod, o, i, density=0.5):
    w = np.zeros((n_mod * o, n_mod * i, 3, 3))
    for m in range(n_mod):
        k = rng.uniform(0.2, 1.0, (o, i, 3, 3)) * rng.choice([-1, 1], (o, i, 3, 3))
        keep = rng.random((o, i)) < density
        keep[np.arange(o), rng.integers(0, i, o)] = True
        keep[rng.integers(0, o, i), np.arange(i)] = True
        w[m * o:(m + 1) * o, m * i:(m + 1) * i] = k * keep[:, :, None, None]
    return w


def planted_resnet(width: int, n_blocks: int, n_mod: int, seed: int = 0):
    """The network and the planted module of every unit (module m: channels m*width .. of each group)."""
    rng = np.random.default_rng(seed)
    b = DagBuilder()
    x = b.input("x", channels=2 * n_mod, spatial=(8, 8))
    h = b.activation(b.conv("stem", x, _blockdiag(rng, n_mod, width, 2), pads=(1, 1, 1, 1)), "relu")
    for k in range(n_blocks):
        t = b.activation(b.conv(f"b{k}.c1", h, _blockdiag(rng, n_mod, width, width), pads=(1, 1, 1, 1)), "relu")
        t = b.conv(f"b{k}.c2", t, _blockdiag(rng, n_mod, width, width), pads=(1, 1, 1, 1))
        h = b.activation(b.add(f"b{k}.add", [h, t]), "relu")
    w = np.kron(np.eye(n_mod), np.ones((2, width))) * rng.uniform(0.2, 1.0, (2 * n_mod, n_mod * width))
    net = b.build(outputs=[b.dense("fc", b.flatten(b.global_avg_pool(h)), w)])
    truth = np.concatenate([np.repeat(np.arange(n_mod), g.n_units // n_mod) for g in net.groups])
    return net, truth


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4,16,64")
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--modules", type=int, default=2)
    ap.add_argument("--methods", default="sculpting,subfunctions")
    ap.add_argument("--lesion-max", type=int, default=16)
    ap.add_argument("--out", default="out/benchmarks/dag_methods.json")
    args = ap.parse_args(argv)
    rows = []
    print(f"{'channels/module':>15} {'units':>6} {'edges':>7} {'method':>13} {'seconds':>8} {'modules':>7} {'ARI':>5}")
    for width in (int(s) for s in args.sizes.split(",")):
        net, truth = planted_resnet(width, args.blocks, args.modules)
        g = build_unit_graph(net)
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            p = detect(g, method=method, seed=1)
            sec = time.perf_counter() - t0
            row = {"width": width, "units": g.n_units, "edges": g.n_edges, "method": method, "seconds": sec,
                   "n_modules": p.n_modules, "ari": float(ari(truth, p.labels))}
            rows.append(row)
            print(f"{width:>15} {g.n_units:>6} {g.n_edges:>7} {method:>13} {sec:>8.2f} {p.n_modules:>7} "
                  f"{row['ari']:>5.2f}")
        if width > args.lesion_max:
            continue
        x = np.random.default_rng(1).normal(size=(32, 2 * args.modules, 8, 8))
        y = net.forward(x).argmax(axis=1)
        labels = truth.copy()
        t0 = time.perf_counter()
        r = importance(net, labels, x, y, n_random=5, seed=0)
        sec = time.perf_counter() - t0
        rows.append({"width": width, "units": g.n_units, "method": "lesion importance", "seconds": sec,
                     "n_lesions": len(r["modules"]) * 6})
        print(f"{width:>15} {g.n_units:>6} {'':>7} {'lesions':>13} {sec:>8.2f} ({len(r['modules'])} modules x 6 lesions)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
