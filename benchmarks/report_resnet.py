"""report.html of a study at ResNet-50 size: study wall time, HTML size, SVG elements, Chromium render time.

    nice -n 5 .venv/bin/python benchmarks/report_resnet.py [--out out/benchmarks/report_resnet]
        [--repeats 3] [--without-resnet] [--reuse-study]

The study (issue 17's "opens readably at MNIST/ResNet size"): torchvision's ResNet-50 layout
(``benchmarks/load_resnet.py``: written by hand, random init, seed 0, legacy exporter, input 64x64)
and a small residual CNN exported twice (PyTorch ONNX, and modgraph HDF5 of what modgraph read
from it, both tagged ``network = "small-cnn"``, so the agreement table has a pair), one method
(``modularity``), one seed, one worker. The files are made once and kept under ``--out``; the study
folder is made afresh each time (``--out``/study), unless ``--reuse-study``: then the stored runs are
kept and only the tables and the report are rebuilt (to measure a changed report without the
minutes of the ResNet run; the study wall time printed is then that of the rebuild). Then Debian's headless Chromium (the flags of
``tests/modgraph/study/test_report.py``) dumps the DOM and takes a 1280x2400 screenshot
(``--out``/report.png, to look at), ``--repeats`` times each, fresh profile each time; the
medians are printed. ``--without-resnet`` leaves ResNet-50 out (a quick check of the script).
Writes ``--out``/report_resnet.json with every number.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _small_cnn():
    import torch
    from torch import nn

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                       nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))

        def forward(self, x):
            h = self.stem(x)
            return self.head(torch.relu(h + self.block(h)))

    torch.manual_seed(1)
    return Small().eval()


def _export(folder: Path, with_resnet: bool) -> dict:
    """The study's files (made once, kept): {name: path}."""
    import warnings

    import torch

    from modgraph.io import load, save
    warnings.filterwarnings("ignore")
    files = {"small.onnx": folder / "small.onnx", "small.h5": folder / "small.h5"}
    if not files["small.onnx"].exists():
        torch.onnx.export(_small_cnn(), (torch.randn(1, 3, 16, 16),), str(files["small.onnx"]), dynamo=False)
    if not files["small.h5"].exists():
        save(load(files["small.onnx"]), files["small.h5"])
    if with_resnet:
        files["resnet50.onnx"] = folder / "resnet50.onnx"
        if not files["resnet50.onnx"].exists():
            sys.path.insert(0, str(Path(__file__).parent))
            from load_resnet import resnet50
            torch.onnx.export(resnet50(), (torch.randn(1, 3, 64, 64),), str(files["resnet50.onnx"]), dynamo=False,
                              input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return files


def _spec(folder: Path, files: dict) -> Path:
    inputs = [("small.onnx", "small-cnn", "pytorch-onnx"), ("small.h5", "small-cnn", "modgraph-h5")]
    if "resnet50.onnx" in files:
        inputs.append(("resnet50.onnx", "resnet50", "pytorch-onnx"))
    text = '[study]\nname = "resnet-size report"\nseeds = [1]\n\n[[methods]]\nname = "modularity"\n'
    text += "".join(f'\n[[inputs]]\npath = "{p}"\nnetwork = "{n}"\nframework = "{f}"\n' for p, n, f in inputs)
    spec = folder / "spec.toml"
    spec.write_text(text)
    return spec


def _chromium(args: list, url: str) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as profile:
        t0 = time.perf_counter()
        out = subprocess.run([*CHROMIUM, f"--user-data-dir={profile}", *args, url], capture_output=True, text=True,
                             timeout=600)
        return time.perf_counter() - t0, out.stdout


def _measure(report: Path, shot: Path, repeats: int) -> dict:
    text = report.read_text()
    url = report.resolve().as_uri()
    dom_s, shot_s, dom = [], [], ""
    for _ in range(repeats):
        s, dom = _chromium(["--dump-dom"], url)
        dom_s.append(s)
        s, _ = _chromium([f"--screenshot={shot}", "--window-size=1280,2400"], url)
        shot_s.append(s)
    svg = re.findall(r"<svg[^>]*>.*?</svg>", text, flags=re.S)
    return {"html_bytes": len(text.encode()), "svgs": len(svg),
            "svg_elements": sum(len(re.findall(r"<(?!/)", s)) for s in svg),
            "rects": text.count("<rect"), "max_svg_width": max((int(w) for w in re.findall(r'<svg width="(\d+)"', text)),
                                                               default=0),
            "dump_dom_s": statistics.median(dom_s), "screenshot_s": statistics.median(shot_s),
            "dom_has_sections": dom.count("<section id="), "dump_dom_runs": dom_s, "screenshot_runs": shot_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/benchmarks/report_resnet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--without-resnet", action="store_true")
    ap.add_argument("--reuse-study", action="store_true")
    args = ap.parse_args()
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    files = _export(folder, not args.without_resnet)
    spec = _spec(folder, files)
    study = folder / "study"
    if not args.reuse_study:
        shutil.rmtree(study, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("modgraph")), "study", str(spec), "--out", str(study),
                    "--workers", "1", "--quiet"], check=True)
    wall = time.perf_counter() - t0
    runs = [json.loads(line) for line in (study / "runs.jsonl").read_text().splitlines()]
    m = _measure(study / "report.html", folder / "report.png", args.repeats)
    print(f"study: {len(runs)} runs (modularity, seed 1, 1 worker) in {wall:.1f} s wall")
    print(f"{'file':<16} {'units':>7} {'edges':>10} {'modules':>7} {'seconds':>8}")
    for r in runs:
        print(f"{r['relpath']:<16} {r['units']:>7} {r['edges']:>10} {r['modules']:>7} {r['seconds']:>8.1f}")
    print(f"report.html {m['html_bytes'] / 1024:.1f} KiB, {m['svgs']} SVGs, {m['svg_elements']} SVG elements "
          f"({m['rects']} rects), widest SVG {m['max_svg_width']} px")
    print(f"Chromium (medians of {args.repeats}, fresh profile each): --dump-dom {m['dump_dom_s']:.2f} s, "
          f"--screenshot 1280x2400 {m['screenshot_s']:.2f} s -> {folder / 'report.png'}")
    (folder / "report_resnet.json").write_text(json.dumps({"study_wall_s": wall, "runs": runs, **m}, indent=1))


if __name__ == "__main__":
    main()
