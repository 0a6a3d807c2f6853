"""modgraph export (issue 17): GraphML read back by networkx, igraph and graph-tool; GEXF by networkx; CSV."""
from __future__ import annotations

import csv

import networkx as nx
import pytest

from modgraph.analyze import analyze_file
from modgraph.cli import main
from modgraph.io import save
from modgraph.testing import sculpted_networks


@pytest.fixture()
def net_file(tmp_path):
    save(sculpted_networks()["[6,3,3,3]"][0], tmp_path / "both.h5")
    return tmp_path / "both.h5"


def _expected(path, method):
    a = analyze_file(path, method=method, seed=0)
    return a.to_dict()["unit_labels"], a


@pytest.mark.parametrize("method", ["sculpting", "nested-sbm"])
def test_graphml_reads_back_in_networkx_igraph_and_graph_tool(tmp_path, net_file, method):
    import graph_tool.all as gt
    import igraph

    out = tmp_path / "g.graphml"
    assert main(["export", str(net_file), "--to", "graphml", "--out", str(out), "--method", method]) == 0
    labels, a = _expected(net_file, method)
    g = nx.read_graphml(out)
    assert g.number_of_nodes() == 15 and g.number_of_edges() == 15 and g.is_directed()
    finest = labels if method == "sculpting" else a.graph.to_full_labels(a.partition.project(0)).tolist()
    assert [g.nodes[f"u{u}"]["module_l0"] for u in range(15)] == finest
    levels = sorted(k for k in g.nodes["u0"] if k.startswith("module_l"))
    assert levels == ["module_l0"] if method == "sculpting" else len(levels) == len(a.partition.levels)
    assert g.graph["method"] == method and g.nodes["u0"]["unit"] == a.input_names[0]
    weights = sorted(d["weight"] for *_, d in g.edges(data=True))
    assert weights == sorted(abs(float(v)) for v in a.graph.value)
    ig = igraph.Graph.Read_GraphML(str(out))
    assert ig.vcount() == 15 and ig.ecount() == 15
    assert [int(v) for v in ig.vs["module_l0"]] == [g.nodes[f"u{u}"]["module_l0"] for u in range(15)]
    tg = gt.load_graph(str(out))
    assert tg.num_vertices() == 15 and tg.num_edges() == 15
    assert list(tg.vp["module_l0"].a) == [g.nodes[f"u{u}"]["module_l0"] for u in range(15)]


def test_gexf_and_csv_carry_the_same_labels(tmp_path, net_file):
    labels, _ = _expected(net_file, "sculpting")
    assert main(["export", str(net_file), "--to", "gexf", "--out", str(tmp_path / "g.gexf")]) == 0
    g = nx.read_gexf(tmp_path / "g.gexf")
    assert [g.nodes[f"u{u}"]["module_l0"] for u in range(15)] == labels and g.number_of_edges() == 15
    assert main(["export", str(net_file), "--to", "csv", "--out", str(tmp_path / "g.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "g.csv")))
    assert [int(r["module_l0"]) for r in rows] == labels and rows[0].keys() >= {"unit", "layer", "index", "alive"}


def test_export_errors_are_one_line(tmp_path, net_file, capsys):
    assert main(["export", str(net_file), "--to", "dot", "--out", str(tmp_path / "g.dot")]) == 2
    assert capsys.readouterr().err.strip() == "modgraph export: error: unknown --to 'dot'; choose one of graphml, gexf, csv"
    assert main(["export", str(net_file), "--to", "csv", "--out", str(tmp_path / "no/g.csv")]) == 2
    assert "folder" in capsys.readouterr().err and not (tmp_path / "no").exists()
