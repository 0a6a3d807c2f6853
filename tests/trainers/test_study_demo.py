"""`make study-demo` (issue 17), reduced: one sculpted network through the six exports, a study
over them, and the report's agreement across frameworks; a tampered export is flagged."""
import json
import re

import torch

from modgraph.io import load
from modgraph.study import parse_spec, run_study
from trainers.study_demo import EXPORTERS, run_study_demo


def _data(report):
    return json.loads(re.search(r'id="modgraph-study-data">(.*?)</script>', report.read_text(), re.S).group(1))


def test_study_demo_exports_agree_across_frameworks(tmp_path, capsys):
    assert run_study_demo(tmp_path, methods=("sculpting", "modularity"), seeds=1, workers=1, progress=False) == 0
    out = capsys.readouterr().out
    assert "agreement across frameworks: 30 pairs (method x seed x pair of exports), 0 differing" in out
    exports = tmp_path / "exports"
    assert sorted(p.name for p in exports.iterdir()) == sorted(EXPORTERS.values())
    formats = {fw: load(exports / name).source_format for fw, name in EXPORTERS.items()}
    assert formats == {"modgraph-hdf5": "modgraph-hdf5", "torch-onnx-legacy": "onnx", "torch-onnx-dynamo": "onnx",
                       "torch-state-dict": "torch-state-dict", "keras3": "keras", "safetensors": "safetensors"}
    data = _data(tmp_path / "study" / "report.html")
    s = data["summary"]
    assert s["stored"] == s["ok"] == 12 and len(s["agreement"]) == 30
    assert all(p["same_graph"] and p["same_partition"] and p["ari"] == 1.0 for p in s["agreement"])
    frameworks = {fw for p in s["agreement"] for fw in (p["a_framework"], p["b_framework"])}
    assert frameworks == set(EXPORTERS)
    cells = {(c["group"], c["label"]): c["mean"] for c in s["success"]["cells"]}
    assert all(cells[(f"framework={fw}", "sculpting")] == 1.0 for fw in EXPORTERS)   # scored by the task spec
    assert "30 pairs, <b>0 differing</b>" in (tmp_path / "study" / "report.html").read_text()

    # one surviving edge removed from one more export: every pair with it is flagged, the rest still agree
    sd = torch.load(exports / "state_dict.pt", weights_only=True)
    w = sd["2.weight"]
    i, j = (w != 0).nonzero()[0].tolist()
    w[i, j] = 0.0
    torch.save(sd, tmp_path / "tampered.pt")
    inputs = [{"path": str(exports / name), "framework": fw, "network": "demo"} for fw, name in EXPORTERS.items()]
    inputs.append({"path": str(tmp_path / "tampered.pt"), "framework": "tampered", "network": "demo"})
    spec = parse_spec({"inputs": inputs, "methods": ["sculpting"], "study": {"seeds": [0]}}, base=tmp_path)
    run_study(spec, tmp_path / "tampered-study", workers=1, progress=False)
    pairs = _data(tmp_path / "tampered-study" / "report.html")["summary"]["agreement"]
    bad = [p for p in pairs if not p["same_partition"]]
    assert len(pairs) == 21 and len(bad) == 6
    assert all("tampered" in (p["a_framework"], p["b_framework"]) and not p["same_graph"] for p in bad)
    page = (tmp_path / "tampered-study" / "report.html").read_text()
    assert "21 pairs, <b>6 differing</b>" in page and page.count('<tr class="bad">') == 6


def test_study_demo_with_a_relative_out_finds_its_exports(tmp_path, monkeypatch, capsys):
    # `make study-demo` passes `--out out/study-demo`: the exports were once looked up under out/study-demo/out/...
    monkeypatch.chdir(tmp_path)
    assert run_study_demo("rel/demo", methods=("modularity",), seeds=1, workers=1, progress=False,
                          frameworks=("modgraph-hdf5", "safetensors")) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs stored" in out and "computed now, 0 errors)" in out
    assert (tmp_path / "rel" / "demo" / "study" / "report.html").is_file()
    assert "agreement across frameworks: 1 pairs (method x seed x pair of exports), 0 differing" in out
