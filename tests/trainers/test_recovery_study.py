"""The recovery study of benchmarks/recovery.py as a `modgraph study` spec (issue 17).

The full cache (out/study, 1,428 networks) is ~2 CPU-hours to sculpt, so the equivalence is
checked on a slice of four networks sculpted the way recovery.py sculpts them (trainers.study,
one (Pu, Pe) step as in test_recovery_benchmark.py): recovery.py's own analysis and the study
engine, run on the spec recovery.py writes, give the same cells.csv, byte for byte, and the same
tables. The checked-in benchmarks/recovery_study.toml is what --write-spec writes for the full grid.
"""
import csv
import importlib
import tomllib
from pathlib import Path

import pytest

from modgraph.cli import main as modgraph
from modgraph.study import read_spec
from trainers.study import sculpt_cells

ROOT = Path(__file__).resolve().parents[2]
CELLS = [("reuse-u2", (8, 8), 0), ("reuse-u2", (8, 8), 1), ("both", (12, 12), 0), ("input-separable", (8,), 0)]
SLICE = ["--tasks", "reuse-u2,both,input-separable", "--widths", "8,12", "--depths", "1,2", "--seeds", "0,1",
         "--no-sculpt", "--quiet"]


@pytest.fixture(scope="module")
def recovery():
    import sys
    sys.path.insert(0, str(ROOT / "benchmarks"))                # the script imports benchmarks/results.py
    try:
        yield importlib.import_module("recovery")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    runs = sculpt_cells(CELLS, path, grid=False, progress=False)
    assert [i["accuracy"] for _, i in runs] == [1.0] * 4
    return path


def test_the_checked_in_spec_is_the_full_recovery_grid(recovery, tmp_path, capsys):
    grid = recovery.grid_cells(list(dict.fromkeys(t for f in recovery.FAMILIES.values() for t in f)), (0, 1, 2, 5))
    assert len(grid) == 1428
    checked_in = ROOT / "benchmarks" / "recovery_study.toml"
    assert checked_in.read_text() == recovery.spec_text(grid, recovery.default_methods(), seed=1,
                                                        root="../out/study"), \
        "benchmarks/recovery_study.toml is stale: run benchmarks/recovery.py --write-spec benchmarks/recovery_study.toml"
    assert recovery.main(["--write-spec", str(tmp_path / "spec.toml")]) == 0       # the CLI writes the same
    assert "1428 networks, 5 methods, root " in capsys.readouterr().out
    assert (tmp_path / "spec.toml").read_text().split("[[inputs]]", 1)[1] == checked_in.read_text().split("[[inputs]]", 1)[1]
    doc = tomllib.loads(checked_in.read_text())
    assert doc["study"] == {"name": "recovery", "root": "../out/study", "seeds": [1]}
    assert [m["name"] for m in doc["methods"]] == recovery.default_methods()
    assert len(doc["inputs"]) == 33 * 3 + 5 * 4                      # one per (task, depth)
    # every glob names exactly the cells of the grid: 3 widths x 4 seeds [0125] per (task, depth)
    cells = {(e["tags"]["task"], e["tags"]["depth"], p) for e in doc["inputs"] for p in e["paths"]}
    assert len(cells) == 357 and all(p.endswith("-s[0125]/network.h5") for _, _, p in cells)
    assert {(t, len(h), f"{t}/{'x'.join(map(str, h))}-s[0125]/network.h5") for t, h, _ in grid} == cells


def test_the_study_engine_reproduces_the_recovery_table_on_a_slice(recovery, cache, tmp_path, capsys):
    common = [*SLICE, "--cache", str(cache)]
    assert recovery.main([*common, "--workers", "1", "--out", str(tmp_path / "script")]) == 0
    script_text = capsys.readouterr().out
    spec = tmp_path / "recovery_slice.toml"
    assert recovery.main([*common, "--write-spec", str(spec)]) == 0
    capsys.readouterr()
    assert len(read_spec(spec).inputs) == 3                          # (reuse-u2, 2), (both, 2), (input-separable, 1)
    assert modgraph(["study", str(spec), "--out", str(tmp_path / "study"), "--workers", "2", "--quiet"]) == 0
    assert "20 of 20 runs stored" in capsys.readouterr().out          # 4 networks x 5 methods
    assert recovery.main([*common, "--from-study", str(tmp_path / "study"), "--out", str(tmp_path / "fromstudy")]) == 0
    study_text = capsys.readouterr().out
    # the cells: same runs, same rates, same errors, byte for byte
    assert (tmp_path / "script/cells.csv").read_bytes() == (tmp_path / "fromstudy/cells.csv").read_bytes()
    cells = [r for r in csv.DictReader((tmp_path / "fromstudy/cells.csv").open()) if r["n"] not in ("", "0")]
    assert {(r["table"], r["row"], r["col"]) for r in cells} >= {("reuse", "2 HL", "u=2"),
                                                                 ("exemplars", "[6,3,3,3]", "2 HL"),
                                                                 ("exemplars", "[4,2,4]", "1 HL")}
    assert all(r["errors"] == "0" for r in cells)
    assert next(r for r in cells if r["table"] == "reuse" and r["method"] == "sculpting")["n"] == "2"
    # the printed tables: identical but for the header's wall time and the run-time columns
    def tables(text):
        lines = text.split("\n### ", 1)[1].splitlines()
        out = []
        for line in lines:
            if line.startswith("wrote "):
                continue
            cells = line.split("|")
            if line.startswith("| ") and "mean success" not in line and len(cells) == 10:   # the mean table
                cells = cells[:5] + cells[7:8]    # method, cells, mean, published; errors (not the seconds)
            out.append("|".join(cells))
        return out
    assert tables(script_text) == tables(study_text) and "| 2 HL | published | 0.58 |" in study_text
    assert "| sculpting | 3 / 98 |" in study_text
    assert "Analysed by `modgraph study`" in study_text and "4 sculpted networks of 3 tasks" in study_text
    rows = {(r["task"], r["seed"], r["method"]): r for r in csv.DictReader((tmp_path / "fromstudy/rows.csv").open())}
    assert len(rows) == 20 and rows[("reuse-u2", "1", "sculpting")]["width"] == "8"
