"""report.html (issue 17): parsed in Python and rendered by Debian's headless Chromium."""
from __future__ import annotations

import json
import re
import subprocess
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest

from modgraph.io import save
from modgraph.study import parse_spec, run_study
from modgraph.study.html import SECTIONS
from modgraph.study.summary import network_pictures
from modgraph.testing import sculpted_networks

CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sections, self.tables, self.urls, self.data, self._json = [], 0, [], "", False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["id"])
        self.tables += tag == "table"
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "xmlns", "srcset") and v]
        self._json = tag == "script" and a.get("type") == "application/json"

    def handle_endtag(self, tag):
        self._json = False if tag == "script" else self._json

    def handle_data(self, data):
        if self._json:
            self.data += data


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    nets = sculpted_networks()
    for name, fw in (("[6,3,3,3]", "a"), ("[6,3,3,3]", "b"), ("[4,2,4]", "a")):
        save(nets[name][0], root / fw / f"{name}.h5")
    (root / "a" / "broken.h5").write_text("junk")
    spec = parse_spec({"inputs": [{"path": "a/[[]6,3,3,3].h5", "framework": "a", "network": "both"},
                                  {"path": "b/[[]6,3,3,3].h5", "framework": "b", "network": "both"},
                                  {"paths": ["a/[[]4,2,4].h5", "a/broken.h5"], "framework": "a",
                                   "truth": str(root / "truth.json")}],
                       "methods": ["sculpting", "modularity"], "study": {"seeds": 2}}, base=root)
    (root / "truth.json").write_text(json.dumps({
        "format": "modgraph-ground-truth", "version": "1.0", "name": "input-separable",
        "inputs": ["x1", "x2", "x3", "x4"], "outputs": ["y1", "y2", "y3", "y4"],
        "input_groups": [[0, 1], [2, 3]], "output_groups": [[0, 1], [2, 3]]}))
    outcome = run_study(spec, root / "out", workers=1, progress=False)
    return root / "out", outcome


def test_report_sections_numbers_and_no_external_urls(study):
    out, outcome = study
    text = (out / "report.html").read_text()
    page = _Page()
    page.feed(text)
    assert page.sections == list(SECTIONS) and page.tables == 6
    assert page.urls == [] and not re.search(r"https?://|url\(|@import", text)
    data = json.loads(page.data)
    s = data["summary"]
    assert s["planned"] == s["stored"] == 16 and s["failed"] == 4 and len(data["runs"]) == 16
    assert {e["path"].rsplit("/", 1)[-1] for e in s["errors"]} == {"broken.h5"}
    cells = {(c["group"], c["label"]): c for c in s["success"]["cells"]}
    assert cells[("framework=a", "sculpting")] == {"group": "framework=a", "label": "sculpting", "mean": 1.0, "n": 2}
    pairs = s["agreement"]                                   # the same network through two "frameworks"
    assert len(pairs) == 4 and all(p["same_graph"] and p["same_partition"] for p in pairs)
    assert all(r["runs"] == 8 for r in s["runtime"])
    stab = {r["label"]: r for r in s["stability"]}
    assert stab["sculpting"]["mean_ari"] == 1.0 and stab["sculpting"]["pairs"] == 3
    assert "FormatError: " in text and "1.00 (n=2)" in text   # the tables show the same numbers


def test_report_renders_in_headless_chromium(study, tmp_path):
    out, _ = study
    url = (out / "report.html").as_uri()
    flags = [*CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert all(f'<section id="{s}">' in dom for s in SECTIONS) and dom.count("<table>") == 6
    assert "sculpting" in dom and "broken.h5" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1000,1400", url], capture_output=True,
                   timeout=120)
    width, height, rows = _png_rows(shot.read_bytes())
    assert (width, height) == (1000, 1400)
    colours = {px for row in rows for px in zip(row[0::3], row[1::3], row[2::3])}
    assert len(colours) > 20                                  # text, tables and bars, not a blank page


def _png_rows(png: bytes):
    """Decode an 8-bit RGB/RGBA PNG (the filters Chromium writes) into rows of RGB bytes."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big"), body[8], body[9]
        idat += body if kind == b"IDAT" else b""
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6)
    bpp = 3 if ctype == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line[j] for j in range(stride) if j % bpp < 3) if y % 20 == 0 else b"")
        prev = line
    return width, height, [r for r in rows if r]


def _mnist_sized(seed=0):
    """A pruned 784-300-100-10 MLP (1,194 units), no training: 10 blocks of units wired densely inside
    (15, 30 and 90 % per layer) and sparsely across (0.05 %), the sparsity pattern of a pruned MNIST classifier."""
    from modgraph.network import Layer, LayeredNetwork
    rng = np.random.default_rng(seed)
    widths, layers = (784, 300, 100, 10), []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        same = (np.arange(n_out)[:, None] * 10 // n_out) == (np.arange(n_in)[None, :] * 10 // n_in)
        p = np.where(same, (0.15, 0.3, 0.9)[i], 0.0005)
        mask = rng.random((n_out, n_in)) < p
        w = rng.normal(size=(n_out, n_in)) * mask
        layers.append(Layer.from_dense(w, rng.normal(size=n_out), mask=mask,
                                       activation="identity" if i == 2 else "relu"))
    return LayeredNetwork(layers)


@pytest.fixture(scope="module")
def mnist_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    for fw in ("a", "b"):
        save(_mnist_sized(), root / fw / "mnist.h5")
    spec = parse_spec({"inputs": [{"path": f"{fw}/mnist.h5", "framework": fw, "network": "mnist"} for fw in "ab"],
                       "methods": ["modularity", "sculpting", {"name": "spectral", "options": {"k": 10}}],
                       "study": {"seeds": 2}}, base=root)
    run_study(spec, root / "out", workers=2, progress=False)
    return root / "out"


def test_report_at_mnist_size_is_aggregated_and_small(mnist_study):
    text = (mnist_study / "report.html").read_text()
    page = _Page()
    page.feed(text)
    data = json.loads(page.data)
    runs = data["runs"]
    assert len(runs) == 12 and all(r["status"] == "ok" and r["units"] > 1000 for r in runs)
    assert len(text) < 100_000                       # kilobytes, not one element per unit and edge
    records = [json.loads(p.read_text()) for p in sorted((mnist_study / "runs").glob("*/result.json"))]
    assert len(records[0]["result"]["labels"]) > 1000                   # the run folders hold every unit
    # the aggregated picture: one bar per (method, layer) (a rectangle holding its title), one piece of a
    # colour's path per (method, layer, module) up to 12 modules, the rest one "other" piece, removed units one more
    def pieces(layer):
        live = [m for m in layer if int(m) >= 0]
        return min(len(live), 12) + (len(live) > 12) + (len(live) < len(layer))
    bars = [layer for pic in network_pictures(records) for m in pic["methods"].values() for layer in m["layers"]]
    n_pieces = sum(pieces(layer) for layer in bars)
    assert text.count("<rect") == len(bars) + len(data["summary"]["runtime"]) and len(bars) == 12
    assert sum(d.count("z") for d in re.findall(r'<path fill="#[0-9a-f]{6}" d="([^"]*)"', text)) == n_pieces < 200
    assert all(int(w) <= 1200 for w in re.findall(r'<svg width="(\d+)"', text))     # fits the page
    widths = records[0]["result"]["widths"]
    assert all(f">layer {j}: {n} units</text>" in text for j, n in enumerate(widths)) and widths[0] > 700
    mods = {r["method"]: r["modules"] for r in runs}
    assert mods["spectral"] == 10 and 5 <= mods["modularity"] <= 40
    assert all(p["same_partition"] for p in data["summary"]["agreement"]) and len(data["summary"]["agreement"]) == 6
    assert '"labels"' not in page.data             # per-unit labels stay in the run folders


def test_report_at_mnist_size_renders_readably_in_headless_chromium(mnist_study, tmp_path):
    url = (mnist_study / "report.html").as_uri()
    flags = [*CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert all(f'<section id="{s}">' in dom for s in SECTIONS) and dom.count("<table>") == 4   # stability, agreement, runtime, runs
    assert "mnist.h5" in dom and "spectral" in dom and "6 pairs, <b>0 differing</b>" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2000", url], capture_output=True,
                   timeout=120)
    width, height, rows = _png_rows(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    colours = {px for row in rows for px in zip(row[0::3], row[1::3], row[2::3])}
    assert len(colours) > 20                                  # text, tables and bars, not a blank page


def _deep_residual_dag(seed=0, width=48, blocks=60):
    """A dense residual DAG, x <- x + relu(W x) 60 times then 10 outputs, W block-diagonal (16 chains of
    3 units side by side, 1 % of the weights across): 5,818 units in 122 layers."""
    from modgraph.dag_builder import DagBuilder
    rng = np.random.default_rng(seed)
    chain = np.arange(width) // 3
    b = DagBuilder()
    x = b.input("x", channels=width)
    for i in range(blocks):
        keep = np.where(chain[:, None] == chain[None, :], 1.0, rng.random((width, width)) < 0.01)
        x = b.add(f"add{i}", [x, b.activation(b.dense(f"dense{i}", x, rng.normal(size=(width, width)) * keep),
                                              "relu")])
    return b.build(outputs=[b.dense("out", x, rng.normal(size=(10, width)))])


@pytest.fixture(scope="module")
def dag_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("deep")
    save(_deep_residual_dag(), root / "deep.h5")
    methods = [{"name": "modularity", "label": f"modularity-r{r}", "options": {"resolution": r}}
               for r in (0.5, 1.0, 2.0, 4.0, 16.0)]                 # five columns: two SVGs per network
    spec = parse_spec({"inputs": [{"path": "deep.h5"}], "methods": methods, "study": {"seeds": [1]}}, base=root)
    run_study(spec, root / "out", workers=2, progress=False)
    return root / "out"


def test_report_of_a_deep_dag_stays_bounded_and_renders(dag_study, tmp_path):
    from modgraph.study.picture import MAX_ROWS, MAX_SEGMENTS
    text = (dag_study / "report.html").read_text()
    page = _Page()
    page.feed(text)
    runs = json.loads(page.data)["runs"]
    assert len(runs) == 5 and all(r["status"] == "ok" and r["units"] > 5000 for r in runs)
    assert max(r["modules"] for r in runs) > MAX_SEGMENTS                 # some bars need an "other" piece
    assert len(text) < 250_000        # 5 methods x 61 rows, up to 14 pieces each: ~26 bytes a piece
    svgs = re.findall(r"<svg[^>]*>.*?</svg>", text, flags=re.S)
    pictures = svgs[1:]                                                    # the first is the runtime bars
    assert len(pictures) == 2 and all(int(w) <= 1200 for w in re.findall(r'<svg width="(\d+)"', text))
    rows = re.findall(r">layers? (\d+)(?:–(\d+))?: (\d+) units</text>", pictures[0])
    assert 40 <= len(rows) <= MAX_ROWS and rows[0][0] == "0" and int(rows[-1][1] or rows[-1][0]) == 121  # 122 layers
    assert all(int(a) == int(b or p) + 1 for (a, _, _), (p, b, _) in zip(rows[1:], rows))  # contiguous
    assert sum(int(n) for _, _, n in rows) == runs[0]["units"]
    assert sum(s.count("<rect") for s in pictures) == 5 * len(rows)                   # one per bar
    n_pieces = sum(d.count("z") for d in re.findall(r'<path fill="#[0-9a-f]{6}" d="([^"]*)"', text))
    assert 5 * len(rows) < n_pieces <= 5 * len(rows) * (MAX_SEGMENTS + 2) and "more modules: " in text
    assert all(s.count("<path") <= 14 for s in pictures)                                 # one per colour
    assert sum(len(re.findall(r"<(?!/)", s)) for s in svgs) < 2_000
    url = (dag_study / "report.html").as_uri()
    flags = [*CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert all(f'<section id="{s}">' in dom for s in SECTIONS) and "modularity-r16.0" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,2400", url], capture_output=True,
                   timeout=120)
    width, height, png = _png_rows(shot.read_bytes())
    assert (width, height) == (1280, 2400) and len({px for r in png for px in zip(r[0::3], r[1::3], r[2::3])}) > 20


def test_report_caps_networks_table_rows_and_long_cells(dag_study):
    from modgraph.study.html import MAX_CELL_CHARS, MAX_NETWORKS, MAX_TABLE_ROWS, render_report
    ok = json.loads(next((dag_study / "runs").glob("*/result.json")).read_text())
    records = [{**ok, "run_id": f"net{i}.h5 | {i}", "path": f"/x/net{i}.h5", "relpath": f"net{i}.h5",
                "tags": {"network": f"net{i}"}} for i in range(MAX_NETWORKS + 10)]
    error = "UnsupportedOpError: " + ", ".join(f"node_{i} (LSTM)" for i in range(300))
    records += [{**ok, "run_id": f"bad{i} | 0", "path": f"/x/bad{i}.onnx", "relpath": f"bad{i}.onnx", "tags": {},
                 "result": {"status": "error", "error": error}} for i in range(MAX_TABLE_ROWS + 60)]
    text = render_report(records, planned=len(records))
    assert text.count("<h3>") == MAX_NETWORKS and "… and 10 more networks, not drawn" in text
    assert f"{MAX_TABLE_ROWS} of {len(records)} rows shown" in text and f"{MAX_TABLE_ROWS} of 560 rows" in text
    assert f"… ({len(error)} characters; all in the embedded JSON)" in text and len(error) > MAX_CELL_CHARS
    page = _Page()
    page.feed(text)
    data = json.loads(page.data)
    assert len(data["runs"]) == len(records) and data["summary"]["errors"][0]["error"] == error
    assert text.count("<tr>") + text.count('<tr class="bad">') <= 6 * (MAX_TABLE_ROWS + 1)
