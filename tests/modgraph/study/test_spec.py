"""The study spec: validation messages, run ids, content keys, derived seeds (issue 17)."""
from __future__ import annotations

import pytest

from modgraph.errors import FormatError
from modgraph.io import save
from modgraph.study import parse_spec, plan_runs, read_spec
from modgraph.study.spec import derive_seed
from modgraph.testing import random_network


def _files(root, names):
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        save(random_network([3, 4, 2], seed=i), root / name)


def test_duplicate_stems_get_distinct_run_ids_and_folders(tmp_path):
    from modgraph.study.store import run_dir_name
    _files(tmp_path, ["runs/a/network.h5", "runs/b/network.h5", "runs/c/network.h5"])
    spec = parse_spec({"inputs": [{"paths": ["runs/*/network.h5"]}], "methods": ["sbm", "modularity"],
                       "study": {"seeds": 3}}, base=tmp_path)
    runs = plan_runs(spec)
    assert len(runs) == 3 * 2 * 3 == len({r.run_id for r in runs}) == len({run_dir_name(r.run_id) for r in runs})
    assert {r.relpath for r in runs} == {"runs/a/network.h5", "runs/b/network.h5", "runs/c/network.h5"}
    assert all(r.path == str((tmp_path / r.relpath).resolve()) for r in runs)


def test_seeds_come_from_study_seed_network_method_and_index(tmp_path):
    _files(tmp_path, ["n.h5"])
    doc = {"inputs": [{"path": "n.h5"}], "methods": ["sbm"], "study": {"seeds": 2, "seed": 7}}
    seeds = [r.seed for r in plan_runs(parse_spec(doc, base=tmp_path))]
    assert seeds == [derive_seed(7, "n.h5", "sbm", 0), derive_seed(7, "n.h5", "sbm", 1)]
    assert seeds == [r.seed for r in plan_runs(parse_spec(doc, base=tmp_path))]     # not the clock
    doc["study"]["seed"] = 8
    assert seeds != [r.seed for r in plan_runs(parse_spec(doc, base=tmp_path))]
    doc["study"]["seeds"] = [1, 5]
    assert [r.seed for r in plan_runs(parse_spec(doc, base=tmp_path))] == [1, 5]


def test_content_key_follows_the_file_bytes_and_options(tmp_path):
    _files(tmp_path, ["n.h5"])
    doc = {"inputs": [{"path": "n.h5"}], "methods": [{"name": "sbm", "options": {"weighted": True}}]}
    (first,) = plan_runs(parse_spec(doc, base=tmp_path))
    save(random_network([3, 4, 2], seed=99), tmp_path / "n.h5")
    (changed,) = plan_runs(parse_spec(doc, base=tmp_path))
    assert first.run_id == changed.run_id and first.key != changed.key
    doc["methods"][0]["options"] = {"weighted": False}
    (other,) = plan_runs(parse_spec(doc, base=tmp_path))
    assert other.run_id != changed.run_id and "weighted" in other.run_id


@pytest.mark.parametrize("doc, match", [
    ({"methods": ["sbm"]}, r"inputs: expected at least one \[\[inputs\]\] table"),
    ({"inputs": [{"path": "n.h5"}], "methods": ["nope"]}, r"methods\[0\]\.name: expected one of .*found 'nope'"),
    ({"inputs": [{"paths": ["*.onnx"]}]}, r"inputs\[0\]: expected files matching '\*\.onnx', found none"),
    ({"inputs": [{"path": "n.h5", "tags": {"seed": 1}}]}, r"inputs\[0\]\.tags\.seed: .*train_seed"),
    ({"inputs": [{"path": "n.h5"}], "study": {"seeds": 0}}, r"study\.seeds: expected a positive count"),
    ({"inputs": [{"path": "n.h5"}], "extra": 1}, r"spec\.extra: expected one of the keys"),
    ({"inputs": [{"path": "n.h5"}], "methods": ["sbm", "sbm"]}, r"methods: expected a distinct label"),
])
def test_bad_specs_name_the_key(tmp_path, doc, match):
    _files(tmp_path, ["n.h5"])
    with pytest.raises(FormatError, match=match):
        parse_spec(doc, source="s.toml", base=tmp_path)


def test_read_spec_reports_toml_errors_with_the_line(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("[study]\nseeds = \n")
    with pytest.raises(FormatError, match=r"s\.toml: TOML: expected a valid TOML document, found .*line 2"):
        read_spec(p)


def test_truth_takes_shipped_task_ids_names_and_files_like_analyze(tmp_path):
    from modgraph.tasks.shipped import TASK_DIR
    _files(tmp_path, ["n.h5", "m.h5"])
    (tmp_path / "mine.json").write_text("{}")
    doc = {"inputs": [{"path": "n.h5"}, {"path": "m.h5", "truth": "both"}], "methods": ["modularity"],
           "study": {"truth": "[4, 2, 4]"}}
    runs = {r.relpath: r for r in plan_runs(parse_spec(doc, base=tmp_path))}
    assert runs["n.h5"].truth == str(TASK_DIR / "input-separable.json")      # by id, spaces ignored
    assert runs["m.h5"].truth == str(TASK_DIR / "both.json")                 # by name, per input
    doc["study"]["truth"] = "mine.json"                                      # a file, relative to the root
    assert plan_runs(parse_spec(doc, base=tmp_path))[0].truth == str(tmp_path / "mine.json")
    doc["study"]["truth"] = "gone.json"                  # a missing .json is a file: its runs become error rows
    assert plan_runs(parse_spec(doc, base=tmp_path))[0].truth == str(tmp_path / "gone.json")
    doc["study"]["truth"] = "[4,2,5]"
    with pytest.raises(FormatError, match=r"^s\.toml: study\.truth: expected a ground-truth file or a shipped "
                       r"task, found unknown task '\[4,2,5\]'; give a spec file \(\.json\) or one of: "
                       r"\[6,3,3,3\] \(both\), .*\[4,2,4\] \(input-separable\)"):
        parse_spec(doc, source="s.toml", base=tmp_path)
    doc["study"]["truth"], doc["inputs"][1]["truth"] = "both", "nope"
    with pytest.raises(FormatError, match=r"^s\.toml: inputs\[1\]\.truth: expected .*unknown task 'nope'"):
        parse_spec(doc, source="s.toml", base=tmp_path)
    doc["inputs"][1]["truth"] = 3
    with pytest.raises(FormatError, match=r"inputs\[1\]\.truth: expected a ground-truth file or a shipped task "
                       r"id, name or alias, found 3"):
        parse_spec(doc, source="s.toml", base=tmp_path)


def test_a_study_scored_by_a_shipped_task_id_matches_analyze_truth(tmp_path):
    from modgraph.analyze import analyze_network, summary_row
    from modgraph.score import read_truth
    from modgraph.study import run_study
    from modgraph.tasks.shipped import task_file
    from modgraph.testing import sculpted_networks
    net = sculpted_networks()["[4,2,4]"][0]
    save(net, tmp_path / "n.h5")
    spec = parse_spec({"inputs": [{"path": "n.h5"}], "methods": ["sculpting"],
                       "study": {"seeds": [1], "truth": "input-separable"}}, base=tmp_path)
    (rec,) = run_study(spec, tmp_path / "out", workers=1, report=False, progress=False).records
    direct = summary_row(analyze_network(net, method="sculpting", seed=1, truth=read_truth(task_file("[4,2,4]"))))
    assert rec["result"]["status"] == "ok" and rec["result"]["success"] == direct["success"] == 1
