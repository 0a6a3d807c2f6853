"""benchmarks/recovery.py (issue 8): the published-cell bookkeeping, and a two-cell slice end to end."""
import csv
import importlib
import json
from pathlib import Path

import pytest

from modgraph.detect import DETECTORS
from trainers.study import sculpt_cells

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def recovery(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))       # the script imports benchmarks/results.py
    return importlib.import_module("recovery")


def test_the_published_cells_of_spec_7_1(recovery):
    cells = recovery.published_cells()
    mean = [c for c in cells if c.in_mean]
    assert len(mean) == 98
    counts = {}
    for c in mean:
        counts[c.table] = counts.get(c.table, 0) + 1
    assert counts == {"exemplars": 12, "reuse": 15, "overlap input_separability": 25,
                      "overlap output_subfunction": 25, "hierarchy all_modules": 12, "[8,2,1,2,8]": 9}
    hidden = [c for c in cells if c.table == "overlap hidden_separability"]
    assert len(hidden) == 25 and not any(c.in_mean for c in hidden) and all(c.published is not None for c in hidden)
    # the cells spec §7.1 gives a ±0.15 tolerance: input separability at o = 3, output o = 2 u = 1 and o = 3 u = 6
    assert sorted((c.criterion, c.row, c.col) for c in mean if c.tolerance) == sorted(
        [("input_separability", "o=3", f"u={u}") for u in (1, 2, 4, 6, 8)]
        + [("output_subfunction", "o=2", "u=1"), ("output_subfunction", "o=3", "u=6")])
    at = {(c.table, c.row, c.col): c for c in cells}
    assert at[("exemplars", "[4,1,2,16]", "1 HL")].published == 0                  # too shallow for reuse
    assert at[("reuse", "3 HL", "u=8")].task == "reused" and at[("reuse", "3 HL", "u=8")].published == .92
    assert at[("[8,2,1,2,8]", "2 HL", "output_subfunction")].published == 0
    assert at[("overlap input_separability", "o=3", "u=1")].depths == (1, 2, 3)
    assert at[("hierarchy all_modules", "1 HL", "u=2")].published is None          # sculpted, not published
    assert sum(c.published for c in mean) == pytest.approx(81.91)
    tasks = [t for f in recovery.FAMILIES.values() for t in f]
    assert {c.task for c in cells} <= set(tasks)
    assert len(recovery.grid_cells(list(dict.fromkeys(tasks)), (0, 1, 2, 5))) == 1428


def test_default_methods_are_every_registered_one_but_spectral(recovery):
    methods = recovery.default_methods()
    assert methods[0] == "sculpting" and "spectral" not in methods
    assert set(methods) == set(DETECTORS) - {"spectral"}


def test_rates_count_errors_as_misses_and_the_mean_skips_cells_without_runs(recovery):
    rows = [{"method": "m", "task": "reuse-u2", "depth": 2, "reuse": 1, "seconds": 0.1},
            {"method": "m", "task": "reuse-u2", "depth": 2, "reuse": 0, "seconds": 0.3},
            {"method": "m", "task": "reuse-u2", "depth": 2, "error": "ValueError: x", "seconds": 0.2},
            {"method": "m", "task": "reuse-u2", "depth": 3, "reuse": 1, "seconds": 0.1}]
    rates = recovery.cell_rates(rows, recovery.published_cells(), ["m"])
    cell = next(r for r in rates if r["table"] == "reuse" and r["row"] == "2 HL" and r["col"] == "u=2")
    assert (cell["rate"], cell["n"], cell["errors"], cell["published"]) == (pytest.approx(1 / 3), 3, 1, .92)
    s = recovery.method_summary(rates, rows, ["m"])["m"]
    assert s["cells"] == 2 and s["mean"] == pytest.approx((1 / 3 + 1) / 2)
    assert s["published_mean"] == pytest.approx((.92 + .75) / 2) and s["median_s"] == pytest.approx(0.15)


def test_a_two_cell_slice_end_to_end(recovery, tmp_path, capsys):
    cells = [("reuse-u2", (8, 8), 0), ("overlap-o0-u1", (12, 12), 0)]
    runs = sculpt_cells(cells, tmp_path / "cache", grid=False, progress=False)   # one (Pu, Pe) step: fast
    assert [i["accuracy"] for _, i in runs] == [1.0, 1.0]
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\n<!-- BEGIN recovery -->\nold\n<!-- END recovery -->\n\nafter\n")
    args = ["--tasks", "reuse-u2,overlap-o0-u1,hierarchy-u2", "--widths", "8,12", "--depths", "2", "--seeds", "0",
            "--methods", "sculpting,modularity", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
            "--quiet", "--write", "--doc", str(doc)]
    # hierarchy-u2, reuse-u2 at width 12 and overlap-o0-u1 at width 8 are not in the cache: left out
    assert recovery.main([*args, "--no-sculpt"]) == 0
    text = capsys.readouterr().out
    assert "| 2 HL | published | 0.58 | 0.92 |" in text and "| o=0 | published | 1.00 |" in text
    rates = list(csv.DictReader((tmp_path / "out" / "cells.csv").open()))
    with_runs = [r for r in rates if r["n"] not in ("", "0")]
    assert {(r["table"], r["row"], r["col"]) for r in with_runs} == {
        ("reuse", "2 HL", "u=2"), ("overlap input_separability", "o=0", "u=1"),
        ("overlap output_subfunction", "o=0", "u=1"), ("overlap hidden_separability", "o=0", "u=1")}
    assert all(0 <= float(r["rate"]) <= 1 and r["n"] == "1" for r in with_runs)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["methods"]
    for m in ("sculpting", "modularity"):
        assert summary[m]["cells"] == 3 and 0 <= summary[m]["mean"] <= 1 and summary[m]["analyses"] == 2
        assert summary[m]["published_mean"] == pytest.approx((.92 + 1 + 1) / 3) and summary[m]["median_s"] > 0
    section = doc.read_text()
    assert "old" not in section and section.rstrip().endswith("after") and "| sculpting | 3 / 98 |" in section
    assert "2 of them with a single (Pu, Pe) step" in section
    rows = list(csv.DictReader((tmp_path / "out" / "rows.csv").open()))
    assert len(rows) == 4 and {r["task"] for r in rows} == {"reuse-u2", "overlap-o0-u1"}


def _fake_rows():
    """Analysis rows for two reuse cells and one overlap cell, two methods, exact known rates."""
    rows = []
    for m, hits in (("sculpting", (1, 1, 0, 1)), ("modularity", (0, 0, 1, 0))):
        rows += [{"method": m, "task": "reuse-u2", "depth": 2, "reuse": h, "seconds": 0.5 + i} for i, h in
                 enumerate(hits)]
        rows += [{"method": m, "task": "overlap-o1-u1", "depth": d, "input_separability": h, "output_subfunction": 1,
                  "hidden_separability": 0, "seconds": 0.1} for d, h in ((1, 1), (2, hits[0]), (3, 0))]
    rows.append({"method": "modularity", "task": "reuse-u4", "depth": 3, "error": "ValueError: x", "seconds": 7.0})
    return rows


def test_the_written_tables_read_back_and_show_the_earlier_rates(recovery, tmp_path):
    methods = ["sculpting", "modularity"]
    rows = _fake_rows()
    rates = recovery.cell_rates(rows, recovery.published_cells(), methods)
    summary = recovery.method_summary(rates, rows, methods)
    assert summary["modularity"]["max_s"] == 7.0 and summary["modularity"]["errors"] == 1
    assert summary["sculpting"]["errors"] == 0
    text = recovery.markdown(rates, summary, [], methods, 60.0)
    back = {(r["table"], r["row"], r["col"], r["method"]): r["rate"] for r in recovery.cells_from_markdown(text)}
    assert back[("reuse", "2 HL", "u=2", "sculpting")] == 0.75
    assert back[("reuse", "2 HL", "u=2", "modularity")] == 0.25
    assert back[("reuse", "3 HL", "u=4", "modularity")] == 0.0                 # the error row is a miss
    assert back[("overlap input_separability", "o=1", "u=1", "sculpting")] == 0.67
    assert back[("overlap hidden_separability", "o=1", "u=1", "networks")] == 0.0
    path = tmp_path / "before.csv"
    recovery._write_csv(path, recovery.cells_from_markdown(text))
    before = recovery.read_before(path)
    assert before == back
    before[("reuse", "2 HL", "u=2", "sculpting")] = 0.25                          # an earlier, worse run
    again = recovery.markdown(rates, summary, [], methods, 60.0, before=before, before_label="the old grid")
    line = next(ln for ln in again.splitlines() if ln.startswith("| | sculpting |") and "(0.25)" in ln)
    assert [c.strip() for c in line.split("|")[3:6]] == ["– (–)", "0.75 ✗ (0.25)", "– (–)"]   # u = 1, 2, 4 (✗: < 0.92 - 0.15)
    assert "followed by the same cell before, in parentheses (the old grid)" in again
    mean_line = next(ln for ln in again.splitlines() if ln.startswith("| sculpting | 3 / 98 |"))
    cols = [c.strip() for c in mean_line.strip("|").split("|")]
    assert cols[2] == "0.81" and cols[3] == "0.64"       # now (0.75 + 0.67 + 1) / 3, before (0.25 + 0.67 + 1) / 3
    # the earlier mean is over the same cells only, not every cell the earlier run had
    before[("reuse", "3 HL", "u=8", "sculpting")] = 0.0                          # no runs there now
    cols = [c.strip() for c in next(ln for ln in recovery.markdown(rates, summary, [], methods, 60.0, before=before)
                                    .splitlines() if ln.startswith("| sculpting | 3 / 98 |")).strip("|").split("|")]
    assert cols[3] == "0.64"
    assert {(r["table"], r["row"], r["col"], r["method"]): r["rate"]
            for r in recovery.cells_from_markdown(again)} == back                 # "(before)" is dropped on reading


def test_before_refuses_a_csv_without_the_columns(recovery, tmp_path):
    path = tmp_path / "cells.csv"
    path.write_text("table,row\nreuse,2 HL\n")
    with pytest.raises(SystemExit, match=r"--before .*cells.csv: expected the columns \['col', 'method', 'rate', "
                                         r"'row', 'table'\], found \['row', 'table'\]"):
        recovery.read_before(path)


def test_replace_section_refuses_to_swallow_another_scripts_section(recovery, tmp_path):
    from results import replace_section
    doc = tmp_path / "results.md"
    doc.write_text("<!-- BEGIN recovery -->\n<!-- BEGIN cnn-random -->\nx\n<!-- END cnn-random -->\nold\n"
                   "<!-- END recovery -->\n")
    before = doc.read_text()
    with pytest.raises(ValueError, match=r"section 'recovery' holds the section\(s\) 'cnn-random' between its "
                                         r"markers"):
        replace_section(doc, "recovery", "new")
    assert doc.read_text() == before
    replace_section(doc, "cnn-random", "y")
    assert "y\n<!-- END cnn-random -->" in doc.read_text()


def test_the_committed_before_table_is_the_grid_before_issue_15(recovery):
    before = recovery.read_before(ROOT / "benchmarks" / "recovery_before_issue15.csv")
    assert len(before) == 109 * 5 + 25
    assert before[("exemplars", "[4,1,2,16]", "2 HL", "sculpting")] == 0.75
    assert before[("hierarchy all_modules", "3 HL", "u=2", "sculpting")] == 0.0
    assert before[("reuse", "2 HL", "u=4", "sculpting")] == 0.17
