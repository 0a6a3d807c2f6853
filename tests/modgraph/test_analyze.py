import csv
import json
import struct

import numpy as np
import pytest

from modgraph.analyze import SCHEMA, analyze_file
from modgraph.cli import main
from modgraph.io import save
from modgraph.testing import sculpted_networks
from trainers.tasks import load_task

NETS = sculpted_networks()


def _save(tmp_path, name, task):
    t = load_task(task)
    path = tmp_path / f"{task}.h5"
    save(NETS[name][0], path, metadata={"ground_truth": t.ground_truth(), "task": t.spec})
    return path


def _png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name, task, n_modules", [("[6,3,3,3]", "both", 6), ("[4,1,2,16]", "reused", 3),
                                                    ("[4,2,4]", "input-separable", 2), ("[4,1,4]", "none", 1)])
def test_analyze_hand_built_nets_with_sculpting(tmp_path, name, task, n_modules):
    a = analyze_file(_save(tmp_path, name, task), method="sculpting", seed=0)
    assert a.partition.n_modules == n_modules and a.scores["success"] is True
    if task == "both":
        ins = [m for m in a.dag.modules if m.inputs]
        assert len(ins) == 3 and all(m.reuse == 2 for m in ins)
        assert all(len(a.dag.modules[t].outputs) == 1 for m in ins for t in m.feeds)
    if task == "reused":
        assert [m.reuse for m in a.dag.modules if m.reuse >= 2] == [2]


def test_cli_writes_json_and_pictures_that_agree(tmp_path, capsys):
    path = _save(tmp_path, "[6,3,3,3]", "both")
    out = tmp_path / "out"
    assert main(["analyze", str(path), "--out", str(out), "--seed", "0"]) == 0
    text = capsys.readouterr().out
    assert "6 modules" in text and "success (input_separability + output_subfunction): yes" in text
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "modules.png", "modules.svg",
                                                    "network.png", "network.svg"]
    d = json.loads((out / "analysis.json").read_text())
    assert d["schema"] == SCHEMA and d["partition"]["n_modules"] == 6 == d["dag"]["n_modules"]
    assert len(d["unit_labels"]) == 15 and len(d["partition"]["labels"]) == len(d["condensed"]["units"])
    for name in ("network.png", "modules.png"):
        w, h = _png_size((out / name).read_bytes())
        assert w > 200 and h > 200
    net_svg, mod_svg = (out / "network.svg").read_text(), (out / "modules.svg").read_text()
    n = d["dag"]["n_modules"]
    assert all(f"module {m}<" in net_svg for m in range(n)) and f"module {n}<" not in net_svg
    assert all(f"M{m} (" in mod_svg for m in range(n)) and f"M{n} (" not in mod_svg


def test_several_files_and_methods_give_a_summary_table(tmp_path, capsys):
    files = [str(_save(tmp_path, "[6,3,3,3]", "both")), str(_save(tmp_path, "[4,1,2,16]", "reused"))]
    out = tmp_path / "study"
    assert main(["analyze", *files, "--method", "sculpting,modularity", "--out", str(out)]) == 0
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("file,source_format,method,seed")
    folders = sorted(p.name.rsplit("-", 1)[0] for p in (out / "runs").iterdir())
    assert folders == ["both.h5-modularity", "both.h5-sculpting", "reused.h5-modularity", "reused.h5-sculpting"]
    for folder in (out / "runs").iterdir():
        assert sorted(p.name for p in folder.iterdir()) == ["analysis.json", "modules.png", "modules.svg",
                                                            "network.png", "network.svg", "result.json"]
    assert (out / "runs.csv").exists() and (out / "report.html").exists()


def test_duplicate_stems_across_folders_keep_every_run(tmp_path, capsys):
    """The guide's `modgraph analyze runs/*/network.h5 --method ...`: three runs of one stem, two
    methods: six runs, each traced to its file; a bad file is an error row, the rest is kept."""
    for i, (name, task) in enumerate((("[6,3,3,3]", "both"), ("[4,1,2,16]", "reused"), ("[4,2,4]", "input-separable"))):
        (tmp_path / f"runs/{i}").mkdir(parents=True)
        _save(tmp_path / f"runs/{i}", name, task).rename(tmp_path / f"runs/{i}/network.h5")
    (tmp_path / "runs/9").mkdir()
    (tmp_path / "runs/9/network.h5").write_text("not a network")
    files = sorted(str(p) for p in tmp_path.glob("runs/*/network.h5"))
    out = tmp_path / "study"
    assert main(["analyze", *files, "--method", "sculpting,modularity", "--seed", "0", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "8 of 8 runs stored (0 already stored, 8 computed now, 2 errors)" in captured.out
    bad = [l for l in captured.err.splitlines() if l.startswith(f"modgraph analyze: {files[3]} (")]
    assert len(bad) == 2 and all("FormatError" in l for l in bad)
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted((r["file"], r["method"]) for r in rows) == [
        (f"{i}/network.h5", m) for i in (0, 1, 2, 9) for m in ("modularity", "sculpting")]
    assert all(r["path"] == str(tmp_path / "runs" / r["file"]) for r in rows)
    ok = {(r["file"], r["method"]): r for r in rows if r["status"] == "ok"}
    assert len(ok) == 6 and len({p.name for p in (out / "runs").iterdir()}) == 8
    assert [ok[(f"{i}/network.h5", "sculpting")]["modules"] for i in range(3)] == ["6", "3", "2"]
    assert all(ok[(f"{i}/network.h5", "sculpting")]["success"] == "1" for i in range(3))
    study_rows = list(csv.DictReader((out / "runs.csv").open()))       # the same runs as runs.csv
    assert sorted(r["relpath"] for r in study_rows) == sorted(r["file"] for r in rows)
    # a rerun computes nothing and ends with the same table
    before = (out / "summary.csv").read_bytes()
    assert main(["analyze", *files, "--method", "sculpting,modularity", "--seed", "0", "--out", str(out)]) == 1
    assert "(8 already stored, 0 computed now, 2 errors)" in capsys.readouterr().out
    assert (out / "summary.csv").read_bytes() == before
    # the same without --out, as JSON: one entry per run, in plan order
    assert main(["analyze", *files, "--method", "sculpting", "--seed", "0", "--json"]) == 1
    entries = json.loads(capsys.readouterr().out)
    assert [e.get("partition", {}).get("n_modules") for e in entries] == [6, 3, 2, None]
    assert entries[3]["status"] == "error" and entries[3]["path"] == files[3]


def test_torch_onnx_export_without_metadata(tmp_path, capsys):
    import torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight.mul_(torch.tensor(np.kron(np.eye(2), np.ones((3, 2))), dtype=torch.float32))
        model[2].weight.mul_(torch.tensor(np.kron(np.eye(2), np.ones((1, 3))), dtype=torch.float32))
    path = tmp_path / "plain.onnx"
    torch.onnx.export(model, (torch.zeros(1, 4),), str(path), dynamo=False)
    assert main(["analyze", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["source_format"] == "onnx" and d["scores"] is None and d["ground_truth"] is None
    assert d["partition"]["n_modules"] == 2
    assert main(["analyze", str(path)]) == 0
    assert "no ground truth" in capsys.readouterr().out


def test_bad_inputs_are_clear_and_leave_no_files(tmp_path, capsys):
    good = _save(tmp_path, "[4,2,4]", "input-separable")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a network at all")
    out = tmp_path / "out"
    assert main(["analyze", str(good), str(junk), "--out", str(tmp_path / "both")]) == 1    # an error row
    assert "junk.bin: start of file: expected one of the supported formats" in capsys.readouterr().err
    assert main(["analyze", str(junk), "--out", str(out)]) == 2
    assert "junk.bin: start of file: expected one of the supported formats" in capsys.readouterr().err
    assert main(["analyze", str(good), "--method", "astrology", "--out", str(out)]) == 2
    assert "unknown method 'astrology'; choose one of" in capsys.readouterr().err
    truth = tmp_path / "both.json"
    truth.write_text(json.dumps(load_task("both").spec))
    assert main(["analyze", str(good), "--truth", str(truth), "--out", str(out)]) == 2
    assert ("--truth describes 6 inputs and 3 outputs, but the network has 4 inputs and 4 outputs"
            in capsys.readouterr().err)
    assert not out.exists()


def test_truth_file_overrides_missing_metadata(tmp_path, capsys):
    path = tmp_path / "bare.h5"
    save(NETS["[6,3,3,3]"][0], path)
    truth = tmp_path / "both.json"
    truth.write_text(json.dumps(load_task("both").spec))
    assert main(["analyze", str(path), "--truth", str(truth), "--json", "--seed", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"]["success"] is True
