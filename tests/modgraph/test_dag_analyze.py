"""The pipeline after loading on a DAG: analysis, report text, aggregated pictures, CLI options, study runs."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from modgraph.analyze import analyze_network, render_analysis, summary_row
from modgraph.cli import main
from modgraph.graph import build_unit_graph
from modgraph.io import load, save
from modgraph.report.draw import MAX_UNITS, aggregate, draw_network
from modgraph.report.text import format_analysis, short_list
from modgraph.testing import random_network

sys.path.insert(0, str(Path(__file__).parent))
from test_dag_graph import residual_modules, small_cnn  # noqa: E402


def test_short_list_truncates_long_unit_lists():
    names = [f"x{i}" for i in range(13, 781)]
    names = names[:702]
    names[-1] = "x780"
    assert short_list(names, "inputs") == "x13 … x780 (702 inputs)"
    assert short_list(["a", "b"]) == "a,b"


@pytest.mark.parametrize("view,method,options", [("split", "modularity", {}), ("coupled", "modularity", {}),
                                                 ("split", "spectral", {"k": 2}), ("filan", "spectral", {"k": 2})])
def test_analysis_of_a_dag_in_each_view(view, method, options):
    net, _ = residual_modules()
    a = analyze_network(net, method=method, view=view, seed=1, **options)
    d = json.loads(json.dumps(a.to_dict()))
    assert d["view"] == view and d["edge_norm"] == ("filan" if view == "filan" else "l1")
    assert len(d["unit_labels"]) == sum(a.graph.widths) and d["condensed"]["units"] == a.graph.unit_names()
    assert sum(gr["n_units"] for gr in d["condensed"]["groups"]) == a.graph.n_units
    text = format_analysis(d)
    assert f"view {view}" in text and f"{a.partition.n_modules} modules" in text
    assert summary_row(a)["view"] == view
    files = render_analysis(a)
    assert files["network.png"][:4] == b"\x89PNG" and b"<svg" in files["modules.svg"]


def test_a_chain_dagnetwork_is_analysed_as_its_chain():
    from modgraph.dag import DagNetwork

    chain = random_network([4, 5, 3], seed=2)
    a, b = analyze_network(chain, method="modularity"), analyze_network(DagNetwork.from_layered(chain), method="modularity")
    assert a.to_dict() == b.to_dict() and "view" not in a.to_dict()


def test_thousands_of_units_are_drawn_aggregated_by_group():
    net, _ = small_cnn(width=300)
    g = build_unit_graph(net)
    assert g.n_units > MAX_UNITS
    labels = np.arange(g.n_units) % 3
    agg = aggregate(g, labels)
    assert [r["name"] for r in agg["groups"]] == ["image", "conv1", "conv2", "conv3", "fc"]
    assert sum(sum(r["modules"].values()) for r in agg["groups"]) == g.n_units
    assert sum(e["n_edges"] for e in agg["edges"]) == g.n_edges
    assert sum(e["weight"] for e in agg["edges"]) == pytest.approx(g.weight.sum())
    svg = draw_network(g, labels, fmt="svg").decode()
    assert "conv2 (300)" in svg and "one node per group" in svg
    assert svg.count("<path") < 200                     # bars and a few group edges, not 180,000 lines


def test_a_long_chain_is_drawn_aggregated_too():
    chain = random_network([700, 20, 3], density=0.05, seed=0)
    g = build_unit_graph(chain)
    svg = draw_network(g, np.zeros(g.n_units, int), fmt="svg").decode()
    assert "inputs (700)" in svg and "one node per group" in svg


def test_cli_view_and_edge_norm_on_info_analyze_significance(tmp_path, capsys):
    net, _ = residual_modules()
    save(net, tmp_path / "res.h5")
    f = str(tmp_path / "res.h5")
    assert main(["info", f, "--view", "coupled", "--edge-norm", "l2"]) == 0
    out = capsys.readouterr().out
    assert "unit graph, view coupled, edge norm l2: 20 units in 3 groups" in out and "not layered" in out
    assert main(["info", f, "--view", "filan", "--json"]) == 0
    u = json.loads(capsys.readouterr().out)["unit_graph"]
    assert (u["view"], u["edge_norm"], u["n_units"]) == ("filan", "filan", 36)
    assert main(["analyze", f, "--method", "modularity", "--view", "coupled", "--out", str(tmp_path / "a")]) == 0
    assert "view coupled, edge norm l1" in capsys.readouterr().out
    d = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert d["view"] == "coupled" and d["partition"]["n_modules"] == 2
    assert main(["analyze", f, "--method", "sculpting", "--view", "coupled"]) == 2
    assert "sculpting is layer-aware and the coupled view is not layered" in capsys.readouterr().err
    assert main(["significance", f, "--method", "modularity", "--view", "split", "--edge-norm", "nnz",
                 "--shuffles", "2", "--out", str(tmp_path / "s")]) == 0
    res = json.loads(next((tmp_path / "s").glob("*.json")).read_text())
    assert res["n_shuffles"] == 2 and res["n_units"] == 68
    chain = tmp_path / "chain.h5"
    save(random_network([3, 4, 2], seed=1), chain)
    assert main(["info", str(chain), "--view", "filan"]) == 2
    assert "filan view" in capsys.readouterr().err


def test_study_runs_take_views_and_edge_norms(tmp_path):
    from modgraph.study.runner import execute

    net, _ = residual_modules()
    save(net, tmp_path / "res.h5")
    base = {"path": str(tmp_path / "res.h5"), "options": {}, "seed": 0, "truth": None, "pictures": False}
    out = execute({**base, "kind": "analysis", "method": "modularity", "view": "coupled", "edge_norm": "l2"})
    assert out["result"]["status"] == "ok", out["result"]["error"]
    assert json.loads(out["files"]["analysis.json"])["edge_norm"] == "l2"
    out = execute({**base, "kind": "significance", "method": "modularity", "view": "filan", "edge_norm": None,
                   "significance": {"null": "layer", "shuffles": 2, "options": {}}})
    assert out["result"]["status"] == "ok", out["result"]["error"]
    assert json.loads(out["files"]["significance.json"])["n_units"] == 36
    bad = execute({**base, "kind": "analysis", "method": "modularity", "view": "sideways", "edge_norm": None})
    assert bad["result"]["status"] == "error" and "unknown view 'sideways'" in bad["result"]["error"]


def test_export_of_a_dag_analysis_is_scalar_and_read_by_networkx(tmp_path):
    import networkx as nx

    from modgraph.export import to_graphml, unit_tables

    net, _ = residual_modules()
    a = analyze_network(net, method="modularity", view="split")
    nodes, edges, meta = unit_tables(a)
    assert len(nodes) == net.n_units and nodes[4]["unit"] == "a:0" and nodes[4]["group"] == "a"
    assert {e["type"] for e in edges} == {"conv", "identity", "dense_from_conv"} and meta["view"] == "split"
    (tmp_path / "g.graphml").write_text(to_graphml(nodes, edges, meta))
    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_nodes() == net.n_units and g.number_of_edges() == len(edges)
    from modgraph.export import to_gexf

    (tmp_path / "g.gexf").write_text(to_gexf(nodes, edges, meta))
    h = nx.read_gexf(tmp_path / "g.gexf")
    assert h.number_of_nodes() == net.n_units and h.nodes["u4"]["group"] == "a"


def test_cli_analyze_of_several_runs_carries_the_view(tmp_path, capsys):
    net, _ = residual_modules()
    save(net, tmp_path / "res.h5")
    assert main(["analyze", str(tmp_path / "res.h5"), "--method", "modularity,spectral", "--option",
                 "spectral.k=2", "--view", "coupled", "--edge-norm", "l2", "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    found = sorted((tmp_path / "o").rglob("analysis.json"))
    assert len(found) == 2
    for f in found:
        d = json.loads(f.read_text())
        assert (d["view"], d["edge_norm"], d["partition"]["n_modules"]) == ("coupled", "l2", 2)
