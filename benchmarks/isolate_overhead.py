"""What isolating libhdf5 reads costs (modgraph.io.isolate): ``load(path)`` (a forked child reads, writes
the network to a temporary HDF5 file, the parent reads it back) against ``load(path, isolate=False)``.

Files: the dense 784-4096-4096-4096-10 MLP of ``benchmarks/load.py`` (36.8M float32 weights) as
modgraph HDF5, and a small 20-16-8-4 chain, written once. In one process (imports done), the two
loads alternate, ``--repeats`` times each (noise hits both alike); prints medians, their ratio and
difference, and the temporary folder's file system (a tmpfs keeps the transfer in memory).

    nice -n 5 .venv/bin/python benchmarks/isolate_overhead.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from modgraph.io import load, save  # noqa: E402
from modgraph.network import Layer, LayeredNetwork  # noqa: E402

FILES = {"MLP 784-4096x3-10 (36.8M)": (784, 4096, 4096, 4096, 10), "small 20-16-8-4": (20, 16, 8, 4)}


def _network(widths) -> LayeredNetwork:
    rng = np.random.default_rng(0)
    return LayeredNetwork([Layer.from_dense(rng.standard_normal((b, a), dtype=np.float32),
                                            np.zeros(b, np.float32)) for a, b in zip(widths[:-1], widths[1:])])


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    fs = subprocess.run(["df", "--output=fstype", tempfile.gettempdir()], capture_output=True, text=True).stdout.split()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, widths in FILES.items():
            path = Path(tmp) / "net.h5"
            save(_network(widths), path)
            load(path), load(path, isolate=False)                       # warm the page cache
            inside, isolated = [], []
            for _ in range(args.repeats):
                inside.append(_time(lambda: load(path, isolate=False)))
                isolated.append(_time(lambda: load(path)))
            a, b = statistics.median(inside), statistics.median(isolated)
            rows.append((name, path.stat().st_size, a, b))
            os.unlink(path)
    print(f"medians of {args.repeats} alternating loads; temporary folder {tempfile.gettempdir()} "
          f"({fs[-1] if fs else '?'})")
    print(f"{'file':<28} {'MiB':>6} {'in-process s':>12} {'isolated s':>10} {'ratio':>6} {'extra ms':>9}")
    for name, size, a, b in rows:
        print(f"{name:<28} {size / 2**20:>6.1f} {a:>12.4f} {b:>10.4f} {b / a:>6.2f} {1000 * (b - a):>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
