"""Cost of the DAG value on a ResNet-50-sized network: build, typed unit edges per norm, forward.

    nice -n 10 python benchmarks/dag_edges.py [--repeats 3] [--size 64]

The ResNet-50 architecture (bottleneck blocks 3-4-6-3, BN after every conv, 1x1 downsample
shortcuts, GAP, fc 2048 -> 1000) is built through ``DagBuilder`` from random float32 weights (no
torch). Prints medians of ``repeats`` runs; ``weights MiB`` is the size of all kernels, ``peak MiB``
the tracemalloc peak of one ``unit_edges`` call.
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from modgraph.dag_builder import DagBuilder
from modgraph.dag_edges import EDGE_NORMS, unit_edges


def _conv_bn(b, rng, name, x, c_in, c_out, k, stride=1, relu=True):
    w = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32) * np.float32(1 / np.sqrt(c_in * k * k))
    t = b.conv(name, x, w, strides=stride, pads=(k // 2,) * 4)
    t = b.batch_norm(t, rng.uniform(0.5, 1.5, c_out), np.zeros(c_out), np.zeros(c_out), np.ones(c_out))
    return b.activation(t, "relu") if relu else t


def resnet50(size: int, seed: int = 0):
    """ResNet-50 as a DagNetwork (random weights)."""
    rng = np.random.default_rng(seed)
    b = DagBuilder(copy=False)
    x = b.input("input", channels=3, spatial=(size, size))
    h = b.max_pool(_conv_bn(b, rng, "conv1", x, 3, 64, 7, 2), 3, strides=2, pads=(1, 1, 1, 1))
    c_in = 64
    for stage, (n_blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512)), 1):
        for blk in range(n_blocks):
            stride = 2 if blk == 0 and stage > 1 else 1
            p = f"layer{stage}.{blk}"
            t = _conv_bn(b, rng, p + ".conv1", h, c_in, width, 1)
            t = _conv_bn(b, rng, p + ".conv2", t, width, width, 3, stride)
            t = _conv_bn(b, rng, p + ".conv3", t, width, 4 * width, 1, relu=False)
            short = h if blk else _conv_bn(b, rng, p + ".downsample", h, c_in, 4 * width, 1, stride, relu=False)
            h = b.activation(b.add(p + ".add", [t, short]), "relu")
            c_in = 4 * width
    w = rng.standard_normal((1000, 2048), dtype=np.float32) * np.float32(0.02)
    return b.build(outputs=[b.dense("fc", b.flatten(b.global_avg_pool(h)), w, np.zeros(1000))])


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="input H = W for the forward pass")
    args = ap.parse_args()
    t_build, net = _median_time(lambda: resnet50(args.size), args.repeats)
    mib = sum(g.weight.nbytes for g in net.groups if g.weight is not None) / 2 ** 20
    print(f"ResNet-50: {len(net.groups)} groups, {net.n_units} units, weights {mib:.1f} MiB, "
          f"build {t_build:.3f} s")
    print(f"{'edge_norm':>9} | {'edges':>9} | {'median s':>8} | {'peak MiB':>8} | peak/weights")
    for norm in EDGE_NORMS:
        t, e = _median_time(lambda: unit_edges(net, edge_norm=norm), args.repeats)
        tracemalloc.start()
        unit_edges(net, edge_norm=norm)
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
        print(f"{norm:>9} | {e.n_edges:>9} | {t:>8.3f} | {peak:>8.1f} | {peak / mib:.2f}")
    x = np.random.default_rng(1).standard_normal((1, 3, args.size, args.size))
    t, _ = _median_time(lambda: net.forward(x), 1)
    print(f"forward of one {args.size}x{args.size} image: {t:.2f} s")


if __name__ == "__main__":
    main()
