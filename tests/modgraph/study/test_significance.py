"""Significance runs in studies (issue 17): a [significance] table → one significance run per
(file, listed method, seed), its p and z in runs.csv and in the report, equal to what
modgraph.nulls.significance gives when called directly."""
from __future__ import annotations

import csv
import json
import re

import pytest

from modgraph.cli import main
from modgraph.errors import FormatError
from modgraph.io import load, save
from modgraph.nulls import significance
from modgraph.study import parse_spec, plan_runs
from modgraph.testing import random_network, sculpted_networks

SPEC = """
[study]
seeds = [3, 4]
[[inputs]]
paths = ["nets/*.h5"]
[[methods]]
name = "modularity"
[[methods]]
name = "spectral"
options = { k = 3 }
[[methods]]
name = "sculpting"
[significance]
methods = ["modularity", "spectral"]
null = "layer"
shuffles = 9
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("sig")
    save(sculpted_networks()["[6,3,3,3]"][0], root / "nets" / "modular.h5")
    save(random_network([6, 12, 12, 3], density=0.9, seed=3), root / "nets" / "dense.h5")
    (root / "spec.toml").write_text(SPEC)
    rc = main(["study", str(root / "spec.toml"), "--out", str(root / "out"), "--workers", "2", "--quiet"])
    return root, rc


def test_significance_runs_put_p_and_z_in_runs_csv(study):
    root, rc = study
    assert rc == 0
    rows = list(csv.DictReader((root / "out/runs.csv").open()))
    sig = [r for r in rows if r["kind"] == "significance"]
    # 2 files x 3 methods x 2 seeds analyses, and 2 files x 2 listed methods x 2 seeds significance runs
    assert len(rows) == 12 + 8 and len(sig) == 8 and {r["method"] for r in sig} == {"modularity", "spectral"}
    for r in sig:                                           # the oracle: the same call made directly
        opts = json.loads(r["options"])
        res = significance(load(r["path"]), method=r["method"], null="layer", n_shuffles=9, seed=int(r["seed"]),
                           options=opts)
        assert float(r["p"]) == pytest.approx(res.p, abs=1e-6) and r["null"] == "layer" and r["shuffles"] == "9"
        assert float(r["z"]) == pytest.approx(res.z, abs=1e-4)
        assert r["statistic"] == {"modularity": "modularity", "spectral": "ncut"}[r["method"]]
    modular = [float(r["p"]) for r in sig if r["relpath"] == "nets/modular.h5" and r["method"] == "modularity"]
    assert modular == [0.1, 0.1]                 # no shuffle of the sculpted net is as modular: p = 1/(N+1)
    assert all(r["p"] == "" for r in rows if r["kind"] == "analysis")


def test_significance_is_in_the_report(study):
    root, _ = study
    text = (root / "out/report.html").read_text()
    data = json.loads(re.search(r'id="modgraph-study-data">(.*?)</script>', text, re.S).group(1))
    rows = data["summary"]["significance"]
    assert len(rows) == 8 and all(r["null"] == "layer" and r["shuffles"] == 9 for r in rows)
    stored = {(r["path"], r["method"], int(r["seed"])): float(r["p"])
              for r in csv.DictReader((root / "out/runs.csv").open()) if r["kind"] == "significance"}
    assert {(r["path"], r["label"], r["seed"]): r["p"] for r in rows} == stored
    section = re.search(r'<section id="significance">(.*?)</section>', text, re.S).group(1)
    assert section.count("<tr>") == 1 + 8 and "<th>p</th>" in section and "modular.h5" in section
    assert all(f"<td class=\"num\">{p}</td>" in section for p in stored.values())


def test_rerun_skips_the_significance_runs(study, capsys):
    root, _ = study
    assert main(["study", str(root / "spec.toml"), "--out", str(root / "out"), "--workers", "1", "--quiet"]) == 0
    assert "20 of 20 runs stored (20 already stored, 0 computed now, 0 errors)" in capsys.readouterr().out


def test_significance_settings_are_part_of_the_content_key(study):
    root, _ = study
    doc = {"inputs": [{"path": "nets/modular.h5"}], "methods": ["modularity"],
           "significance": {"methods": ["modularity"], "shuffles": 9}}
    first = {r.kind: r for r in plan_runs(parse_spec(doc, base=root))}
    doc["significance"]["shuffles"] = 10
    second = {r.kind: r for r in plan_runs(parse_spec(doc, base=root))}
    assert first["analysis"].key == second["analysis"].key and first["significance"].key != second["significance"].key
    assert first["significance"].run_id == second["significance"].run_id


@pytest.mark.parametrize("sig, match", [
    ({"methods": ["sculpting"]}, r"significance\.methods\[0\]: expected a method with a statistic"),
    ({"methods": ["sbm"]}, r"significance\.methods\[0\]: expected the name of a \[\[methods\]\] entry"),
    ({"methods": ["modularity"], "null": "bogus"}, r"significance\.null: expected one of layer, layer_nonzero"),
    ({"methods": ["modularity"], "shuffles": 0}, r"significance\.shuffles: expected a positive integer"),
    ({"methods": ["modularity"], "alpha": 0.05}, r"significance\.alpha: expected one of the keys"),
])
def test_bad_significance_settings_name_the_key(study, sig, match):
    root, _ = study
    doc = {"inputs": [{"path": "nets/modular.h5"}], "methods": ["modularity", "sculpting"], "significance": sig}
    with pytest.raises(FormatError, match=match):
        parse_spec(doc, source="s.toml", base=root)
