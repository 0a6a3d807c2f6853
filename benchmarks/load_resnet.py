"""Reading a ResNet-50-sized ONNX file and building its unit graph, against the raw onnx library.

    nice -n 5 .venv/bin/python benchmarks/load_resnet.py [--repeats 3] [--size 64]
        [--baseline DIR] [--out out/benchmarks/load_resnet.json]
    nice -n 5 .venv/bin/python benchmarks/load_resnet.py --analyze [--methods modularity,spectral]
        [--views split,filan] [--out out/benchmarks/analyze_resnet.json]

torchvision's ResNet-50 architecture (bottleneck blocks 3-4-6-3, BN after every conv, 1x1
downsample shortcuts, GAP, fc 2048 -> 1000; 25.6M parameters) is written by hand here (torchvision
does not install against our CPU torch), random init (seed 0), exported in eval mode with both
PyTorch exporters: legacy (``dynamo=False``: Conv+BN fused, Flatten) and dynamo (``ReduceMean`` +
``Reshape``, weights in a ``.onnx.data`` sidecar). ``--size`` is the export's input size; the
weights do not depend on it. Each measurement runs in a fresh process (imports first, not timed):
wall and CPU (user + system) time of the call and the peak resident memory it adds (VmHWM after minus VmRSS before, the
peak reset through ``/proc/self/clear_refs``; Linux only). Methods:

* ``raw``: ``onnx.load`` + ``numpy_helper.to_array`` of every initializer (the baseline);
* ``load``: ``modgraph.load`` (the DagNetwork);
* ``load+graph``: ``modgraph.load`` then ``build_unit_graph`` (the default split view, l1 norm:
  what ``modgraph analyze`` builds before it condenses) and its ``n_edges``;
* ``load+info``: ``modgraph.load`` then ``net.summary()`` (what ``modgraph info`` prints: groups,
  units, edges by type);
* ``load+edges``: ``modgraph.load`` then ``unit_edges`` (l1): the 15.5M typed edges listed as
  int64 src/dst, float64 weight, int8 type, int64 nnz (~500 MB, several times the weights).

``--baseline DIR`` runs the modgraph methods a second time with the package imported from
``DIR/modgraph`` (e.g. ``git archive main modgraph | tar -x -C DIR``), interleaved with this tree's
runs, so before and after are measured side by side on the same machine load.

``--analyze`` times ``modgraph analyze FILE --method M --view V`` (the CLI, a fresh process each,
the legacy export) for every method and view: wall seconds and the process's peak RSS
(``wait4``'s ``ru_maxrss``), and the graph's size from the analysis JSON.

Prints medians of ``repeats`` runs with the ratios to ``raw``; writes every run as JSON. On a
shared machine the wall time mostly measures waiting for a core: the CPU time is the steadier figure.
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

METHODS = ("raw", "load", "load+graph", "load+info", "load+edges")


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        line = next(l for l in fh if l.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _child(method: str, path: str, tree: str) -> None:
    """One measurement in this fresh process; prints {"seconds", "peak_bytes", ...} as JSON."""
    if tree != "-":
        sys.path.insert(0, tree)                 # the baseline's modgraph package, ahead of this tree's
    import onnx
    from onnx import numpy_helper

    import modgraph
    from modgraph.dag_edges import unit_edges
    from modgraph.graph import build_unit_graph
    from modgraph.io import load

    assert tree == "-" or modgraph.__file__.startswith(tree), modgraph.__file__
    extra = {}
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_bytes("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "raw":
        model = onnx.load(path)
        arrays = [numpy_helper.to_array(t) for t in model.graph.initializer]
        extra["weight_bytes"] = int(sum(a.nbytes for a in arrays))
    else:
        net = load(path)
        extra["groups"] = len(net.groups)
        if method == "load+graph":
            g = build_unit_graph(net)
            extra["edges"] = int(g.n_edges)
        elif method == "load+info":
            extra["edges"] = int(net.summary()["n_edges"])
        elif method == "load+edges":
            e = unit_edges(net)
            extra["edges"] = int(e.n_edges)
            extra["edge_bytes"] = int(sum(getattr(e, a).nbytes for a in ("src", "dst", "weight", "type", "nnz")))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_bytes": _status_bytes("VmHWM") - before, **extra}))


def resnet50():
    """torchvision's ResNet-50 layout, written out (Bottleneck: 1x1, 3x3 (stride), 1x1 x4)."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, c_in, width, stride):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
            self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
            self.conv3, self.bn3 = nn.Conv2d(width, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width)
            self.downsample = None
            if stride != 1 or c_in != 4 * width:
                self.downsample = nn.Sequential(nn.Conv2d(c_in, 4 * width, 1, stride, bias=False),
                                                nn.BatchNorm2d(4 * width))

        def forward(self, x):
            h = torch.relu(self.bn1(self.conv1(x)))
            h = torch.relu(self.bn2(self.conv2(h)))
            h = self.bn3(self.conv3(h))
            return torch.relu(h + (x if self.downsample is None else self.downsample(x)))

    torch.manual_seed(0)                         # before any layer: the same weights on every run
    layers, c_in = [], 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for k in range(blocks):
            layers.append(Bottleneck(c_in, width, stride if k == 0 else 1))
            c_in = 4 * width
    return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1), *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(2048, 1000)).eval()


def _export(folder: Path, size: int) -> dict:
    import warnings

    import torch
    warnings.filterwarnings("ignore")
    m, x = resnet50(), torch.randn(1, 3, size, size)
    paths = {"legacy": folder / "resnet50_legacy.onnx", "dynamo": folder / "resnet50_dynamo.onnx"}
    torch.onnx.export(m, (x,), str(paths["legacy"]), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    torch.onnx.export(m, (x,), str(paths["dynamo"]), dynamo=True, external_data=True, verbose=False)
    return {k: str(v) for k, v in paths.items()}


def _run(method: str, path: str, tree: str = "-") -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", method, path, tree], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load_table(args, paths: dict) -> None:
    trees = {"after": "-"} | ({"before": str(Path(args.baseline).resolve())} if args.baseline else {})
    runs = []
    for _ in range(args.repeats):
        for exporter, path in paths.items():
            runs.append({"exporter": exporter, "tree": "-", "method": "raw", **_run("raw", path)})
            for method in METHODS[1:]:
                for tree, where in trees.items():
                    runs.append({"exporter": exporter, "tree": tree, "method": method, **_run(method, path, where)})
    weights = statistics.median(r["weight_bytes"] for r in runs if r["method"] == "raw")
    load = os.getloadavg()
    print(f"ResNet-50, random init: {weights / 2**20:.1f} MiB of float32 weights; medians of {args.repeats} "
          f"fresh-process runs on {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"{'exporter':<8} {'tree':<6} {'method':<11} {'wall s':>7} {'x raw':>6} {'cpu s':>6} {'x raw':>6} "
          f"{'peak MiB':>9} {'x weights':>9} {'edges':>10}")
    for exporter in paths:
        def med(tree, m, k):
            return statistics.median(r[k] for r in runs if r["exporter"] == exporter and r["method"] == m
                                     and r["tree"] == tree)
        raw_s, raw_c = med("-", "raw", "seconds"), med("-", "raw", "cpu_seconds")
        for m in METHODS:
            for tree in (("-",) if m == "raw" else tuple(trees)):
                row = next(r for r in runs if r["exporter"] == exporter and r["method"] == m and r["tree"] == tree)
                sec, cpu, peak = med(tree, m, "seconds"), med(tree, m, "cpu_seconds"), med(tree, m, "peak_bytes")
                print(f"{exporter:<8} {tree:<6} {m:<11} {sec:>7.2f} {sec / raw_s:>6.2f} {cpu:>6.2f} "
                      f"{cpu / raw_c:>6.2f} "
                      f"{peak / 2**20:>9.0f} {peak / weights:>9.2f} {row.get('edges', ''):>10}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"size": args.size, "repeats": args.repeats, "loadavg": load,
                                          "runs": runs}, indent=1))


def _analyze_table(args, path: str) -> None:
    cli = str(Path(sys.executable).with_name("modgraph"))
    runs = []
    for view in args.views.split(","):
        for method in args.methods.split(","):
            with tempfile.TemporaryDirectory() as out:
                cmd = [cli, "analyze", path, "--method", method, "--view", view, "--out", out, "--quiet"]
                load0 = os.getloadavg()[0]
                t0 = time.perf_counter()
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                err = proc.stderr.read().decode()
                _, status, usage = os.wait4(proc.pid, 0)
                seconds = time.perf_counter() - t0
                if status != 0:
                    raise SystemExit(f"{' '.join(cmd)} failed ({status}): {err[-2000:]}")
                d = json.loads((Path(out) / "analysis.json").read_text())
            runs.append({"view": view, "method": method, "seconds": seconds,
                         "cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_bytes": usage.ru_maxrss * 1024,
                         "units": d["condensed"]["n_units"], "edges": d["condensed"]["n_edges"],
                         "modules": d["partition"]["n_modules"], "load_before": load0})
            r = runs[-1]
            print(f"{view:<6} {method:<11} {seconds:>8.1f} s wall {r['cpu_seconds']:>8.1f} s cpu "
                  f"{r['peak_rss_bytes'] / 2**30:>6.2f} GiB "
                  f"{r['units']:>7} units {r['edges']:>10} edges {r['modules']:>5} modules", flush=True)
    load = os.getloadavg()
    print(f"(load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {os.cpu_count()} cores)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"size": args.size, "loadavg": load, "runs": runs}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--baseline", help="a folder holding another modgraph package to measure beside this one")
    ap.add_argument("--analyze", action="store_true", help="time `modgraph analyze` instead of the load")
    ap.add_argument("--methods", default="modularity,spectral")
    ap.add_argument("--views", default="split,filan")
    ap.add_argument("--out")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    args.out = args.out or f"out/benchmarks/{'analyze' if args.analyze else 'load'}_resnet.json"
    with tempfile.TemporaryDirectory() as tmp:
        paths = _export(Path(tmp), args.size)
        if args.analyze:
            _analyze_table(args, paths["legacy"])
        else:
            _load_table(args, paths)


if __name__ == "__main__":
    main()
