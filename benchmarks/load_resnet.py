"""Reading a ResNet-50-sized ONNX file as a DagNetwork, against the raw onnx library, side by side.

    nice -n 10 .venv/bin/python benchmarks/load_resnet.py [--repeats 3] [--size 64]
        [--out out/benchmarks/load_resnet.json]

torchvision's ResNet-50 architecture (bottleneck blocks 3-4-6-3, BN after every conv, 1x1
downsample shortcuts, GAP, fc 2048 -> 1000; 25.6M parameters) is written by hand here (torchvision
does not install against our CPU torch), random init (seed 0), exported in eval mode with both
PyTorch exporters: legacy (``dynamo=False``: Conv+BN fused, Flatten) and dynamo (``ReduceMean`` +
``Reshape``, weights in a ``.onnx.data`` sidecar). ``--size`` is the export's input size; the
weights do not depend on it. Each measurement runs in a fresh process (imports first, not timed):
wall time of the call and the peak resident memory it adds (VmHWM after minus VmRSS before, the
peak reset through ``/proc/self/clear_refs``; Linux only). Methods:

* ``raw``: ``onnx.load`` + ``numpy_helper.to_array`` of every initializer (the baseline);
* ``load``: ``modgraph.load`` (the DagNetwork);
* ``load+edges``: ``modgraph.load`` then ``unit_edges`` (l1). The edge arrays alone are about
  15.5M edges x (int64 src + int64 dst + float64 weight + int8 type + int32 nnz), ~400-500 MB,
  several times the float32 weights: the 2x-weights memory target cannot hold for them.

Prints medians of ``repeats`` runs with the ratios to ``raw``; writes every run as JSON.
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

METHODS = ("raw", "load", "load+edges")


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        line = next(l for l in fh if l.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _child(method: str, path: str) -> None:
    """One measurement in this fresh process; prints {"seconds", "peak_bytes", ...} as JSON."""
    import onnx
    from onnx import numpy_helper

    from modgraph.dag_edges import unit_edges
    from modgraph.io import load

    extra = {}
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_bytes("VmRSS")
    t0 = time.perf_counter()
    if method == "raw":
        model = onnx.load(path)
        arrays = [numpy_helper.to_array(t) for t in model.graph.initializer]
        extra["weight_bytes"] = int(sum(a.nbytes for a in arrays))
    else:
        net = load(path)
        extra["groups"] = len(net.groups)
        if method == "load+edges":
            e = unit_edges(net)
            extra["edges"] = int(e.n_edges)
            extra["edge_bytes"] = int(sum(getattr(e, a).nbytes for a in ("src", "dst", "weight", "type", "nnz")))
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_bytes": _status_bytes("VmHWM") - before, **extra}))


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

    layers, c_in = [], 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for k in range(blocks):
            layers.append(Bottleneck(c_in, width, stride if k == 0 else 1))
            c_in = 4 * width
    torch.manual_seed(0)
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


def _run(method: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", method, path], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", default="out/benchmarks/load_resnet.json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = _export(Path(tmp), args.size)
        for exporter, path in paths.items():
            for _ in range(args.repeats):
                for method in METHODS:
                    runs.append({"exporter": exporter, "method": method, **_run(method, path)})
    weights = statistics.median(r["weight_bytes"] for r in runs if r["method"] == "raw")
    print(f"ResNet-50, random init: {weights / 2**20:.1f} MiB of float32 weights; medians of {args.repeats} "
          f"fresh-process runs on {os.cpu_count()} cores")
    print(f"{'exporter':<8} {'method':<11} {'seconds':>8} {'x raw':>6} {'peak MiB':>9} {'x raw':>6} "
          f"{'x weights':>9} {'edges':>10} {'edge MiB':>9}")
    for exporter in paths:
        med = {m: {k: statistics.median(r[k] for r in runs if r["exporter"] == exporter and r["method"] == m)
                   for k in ("seconds", "peak_bytes")} for m in METHODS}
        for m in METHODS:
            row = next(r for r in runs if r["exporter"] == exporter and r["method"] == m)
            print(f"{exporter:<8} {m:<11} {med[m]['seconds']:>8.2f} {med[m]['seconds'] / med['raw']['seconds']:>6.2f} "
                  f"{med[m]['peak_bytes'] / 2**20:>9.0f} {med[m]['peak_bytes'] / med['raw']['peak_bytes']:>6.2f} "
                  f"{med[m]['peak_bytes'] / weights:>9.2f} {row.get('edges', ''):>10} "
                  f"{(row['edge_bytes'] / 2**20 if 'edge_bytes' in row else 0):>9.0f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"size": args.size, "repeats": args.repeats, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
