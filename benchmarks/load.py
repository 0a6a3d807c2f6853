"""Load time and peak memory of modgraph's readers against the raw libraries, side by side.

A dense 784-4096-4096-4096-10 MLP (float32, ~36.8M weights) is written once as ONNX
(``export_onnx``) and as modgraph HDF5 (``save``). Each measurement runs in a fresh
process (imports done first, not timed): the wall time of the load call and the peak
resident memory it adds (VmHWM after minus VmRSS before, the peak reset
through ``/proc/self/clear_refs``; Linux only). Raw baselines:
``onnx.load`` + ``numpy_helper.to_array`` of every initializer, and h5py reading every
dataset of the modgraph file. Prints a table of medians of: wall time, minimum wall time
and CPU time of the first load in a fresh process; wall time of 3 further loads in that
process ("warm": memory already mapped, so the VM's first-touch page cost is left out); and
peak memory of the first load; each with its ratio to the raw baseline. Writes every run as JSON.
The modgraph HDF5 read is timed in-process (``isolate=False``); what the isolation of libhdf5 reads
adds is measured by ``benchmarks/isolate_overhead.py``.

    .venv/bin/python benchmarks/load.py [--repeats 5] [--density 1.0] [--out out/benchmarks/load.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTHS = (784, 4096, 4096, 4096, 10)
METHODS = {"onnx": ("raw-onnx", "modgraph-onnx"), "hdf5": ("raw-h5py", "modgraph-hdf5")}
WARM_RUNS = 3


def _status_bytes(field: str) -> int:
    """VmRSS / VmHWM of this process from /proc/self/status, in bytes."""
    with open("/proc/self/status") as fh:
        line = next(l for l in fh if l.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _reset_peak() -> None:
    """Reset VmHWM (the peak RSS) to the current RSS, so import-time peaks do not count."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _child(method: str, path: str) -> None:
    """Run one load in this (fresh) process; print {"seconds", "cpu_seconds", "peak_bytes"} as JSON."""
    import h5py
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from modgraph.io import load

    def raw_onnx():
        model = onnx.load(path)
        return [numpy_helper.to_array(t) for t in model.graph.initializer]

    def raw_h5py():
        with h5py.File(path, "r") as f:
            out = []
            f.visititems(lambda name, obj: out.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
            return out

    run = {"raw-onnx": raw_onnx, "raw-h5py": raw_h5py,
           "modgraph-onnx": lambda: load(path),
           "modgraph-hdf5": lambda: load(path, isolate=False)}[method]   # the reader itself: isolation's second
    #                                                                     read is benchmarks/isolate_overhead.py
    _reset_peak()
    before = _status_bytes("VmRSS")
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = _status_bytes("VmHWM") - before
    del result
    warm = []
    for _ in range(WARM_RUNS):        # same process again: memory already mapped, no first-touch cost
        start = time.perf_counter()
        result = run()
        warm.append(time.perf_counter() - start)
        del result
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_bytes": peak,
                      "warm_seconds": statistics.median(warm)}))


def _write_files(folder: Path, density: float) -> tuple[dict, int]:
    import numpy as np

    from modgraph.io import export_onnx, save
    from modgraph.network import Layer, LayeredNetwork

    rng = np.random.default_rng(0)
    layers = []
    for n_in, n_out in zip(WIDTHS[:-1], WIDTHS[1:]):
        w = rng.standard_normal((n_out, n_in), dtype=np.float32)
        if density < 1.0:
            w *= rng.random((n_out, n_in), dtype=np.float32) < density
        layers.append(Layer.from_dense(w, np.zeros(n_out, np.float32), activation="relu"))
    net = LayeredNetwork(layers)
    files = {"onnx": folder / "mlp.onnx", "hdf5": folder / "mlp.h5"}
    export_onnx(net, files["onnx"])
    save(net, files["hdf5"])
    n_weights = sum(a * b for a, b in zip(WIDTHS[:-1], WIDTHS[1:]))
    return files, n_weights


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--density", type=float, default=1.0, help="fraction of weights kept (1.0: dense)")
    p.add_argument("--out", default="out/benchmarks/load.json")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    from tqdm import tqdm

    with tempfile.TemporaryDirectory() as tmp:
        files, n_weights = _write_files(Path(tmp), args.density)
        weight_bytes = 4 * n_weights
        runs = {m: [] for pair in METHODS.values() for m in pair}
        jobs = [(fmt, m) for _ in range(args.repeats) for fmt, pair in METHODS.items() for m in pair]
        for fmt, method in tqdm(jobs, desc="loads", unit="load"):      # interleaved: noise hits all alike
            out = subprocess.run([sys.executable, __file__, "--child", method, str(files[fmt])],
                                 check=True, capture_output=True, text=True).stdout
            runs[method].append(json.loads(out.strip().splitlines()[-1]))
        sizes = {fmt: files[fmt].stat().st_size for fmt in files}
    rows = _table(runs, weight_bytes)
    print(f"\n{'x'.join(map(str, WIDTHS))} MLP, density {args.density}, {n_weights / 1e6:.1f}M weights "
          f"({weight_bytes / 2**20:.0f} MiB as float32), file sizes ONNX {sizes['onnx'] / 2**20:.0f} MiB, "
          f"HDF5 {sizes['hdf5'] / 2**20:.0f} MiB; medians of {args.repeats} fresh-process runs")
    print(f"{'method':<15} {'time s':>7} {'x raw':>6} {'min s':>6} {'x raw':>6} {'cpu s':>6} {'x raw':>6} "
          f"{'warm s':>6} {'x raw':>6} {'peak MiB':>8} {'x raw':>6} {'x weights':>9}")
    for r in rows:
        print(f"{r['method']:<15} {r['seconds']:>7.3f} {r['time_ratio']:>6.2f} {r['min_seconds']:>6.3f} "
              f"{r['min_time_ratio']:>6.2f} {r['cpu_seconds']:>6.3f} {r['cpu_ratio']:>6.2f} {r['warm_seconds']:>6.3f} "
              f"{r['warm_ratio']:>6.2f} {r['peak_mib']:>8.0f} {r['peak_ratio']:>6.2f} {r['peak_over_weights']:>9.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"widths": WIDTHS, "density": args.density, "n_weights": n_weights,
                                          "weight_bytes": weight_bytes, "file_bytes": sizes, "rows": rows,
                                          "runs": runs}, indent=2))
    return 0


def _table(runs: dict, weight_bytes: int) -> list[dict]:
    med = {m: (statistics.median(r["seconds"] for r in rs), statistics.median(r["peak_bytes"] for r in rs),
               min(r["seconds"] for r in rs), statistics.median(r["cpu_seconds"] for r in rs),
               statistics.median(r["warm_seconds"] for r in rs)) for m, rs in runs.items()}
    rows = []
    for raw, ours in METHODS.values():
        for m in (raw, ours):
            rows.append({"method": m, "seconds": med[m][0], "time_ratio": med[m][0] / med[raw][0],
                         "min_seconds": med[m][2], "min_time_ratio": med[m][2] / med[raw][2],
                         "cpu_seconds": med[m][3], "cpu_ratio": med[m][3] / med[raw][3],
                         "warm_seconds": med[m][4], "warm_ratio": med[m][4] / med[raw][4],
                         "peak_mib": med[m][1] / 2**20, "peak_ratio": med[m][1] / med[raw][1],
                         "peak_over_weights": med[m][1] / weight_bytes})
    return rows


if __name__ == "__main__":
    sys.exit(main())
