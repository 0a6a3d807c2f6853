import numpy as np
import pytest

from modgraph.graph import build_unit_graph, condense
from modgraph.hierarchy import module_dag, reachability
from modgraph.partition import Hierarchy, Partition
from modgraph.testing import labels_from_modules, sculpted_networks

NETS = sculpted_networks()


def _dag(name):
    net, _, _, modules = NETS[name]
    g = condense(build_unit_graph(net))
    return g, module_dag(g, Partition(labels_from_modules(g, modules)))


@pytest.mark.parametrize("name", sorted(NETS))
def test_condensed_architecture_of_hand_built_nets(name):
    net, widths, n_edges, _ = NETS[name]
    g = condense(build_unit_graph(net))
    assert [int((g.layer == l).sum()) for l in range(g.n_layers)] == widths and g.n_edges == n_edges


def test_6333_three_input_modules_each_feeding_two_of_three_outputs():
    g, dag = _dag("[6,3,3,3]")
    inputs = [m for m in dag.modules if m.inputs]
    outputs = [m for m in dag.modules if m.outputs]
    assert len(inputs) == 3 and len(outputs) == 3
    assert sorted(m.input_support for m in inputs) == [[0, 1], [2, 3], [4, 5]]
    for m in inputs:
        assert m.reuse == 2 and m.level == 0 and m.layers == [0, 1, 2]
        assert all(dag.modules[t].outputs for t in m.feeds)
    assert sorted(sorted(m.fed_by) for m in outputs) == [[0, 1], [0, 2], [1, 2]]
    assert all(m.level == 1 and m.reuse == 0 for m in outputs)
    assert sorted(m.input_support for m in outputs) == [[0, 1, 2, 3], [0, 1, 4, 5], [2, 3, 4, 5]]
    assert dag.acyclic and sum(e.n_edges for e in dag.edges) == 6


def test_41216_one_module_reused_by_two():
    g, dag = _dag("[4,1,2,16]")
    reused = [m for m in dag.modules if m.reuse >= 2]
    assert len(reused) == 1 and reused[0].inputs == [0, 1, 2, 3] and reused[0].units["1"] == [0, 1, 2]
    others = [dag.modules[t] for t in reused[0].feeds]
    assert sorted(m.outputs for m in others) == [list(range(0, 16, 2)), list(range(1, 16, 2))]
    assert all(m.input_support == [0, 1, 2, 3] and m.level == 1 for m in others)
    edge = {(e.source, e.target): e for e in dag.edges}
    assert sorted(e.n_edges for e in edge.values()) == [3, 3]


def test_edge_weights_sum_the_unit_edges():
    g, dag = _dag("[4,2,4] 1 HL")
    assert dag.edges == [] and [m.drives for m in dag.modules] == [[0, 1], [2, 3]]
    labels = np.zeros(g.n_units, dtype=int)
    labels[g.layer == 2] = 1                                   # outputs apart from the rest
    dag2 = module_dag(g, Partition(labels))
    assert len(dag2.edges) == 1 and dag2.edges[0].n_edges == 4
    assert dag2.edges[0].weight == pytest.approx(g.weight[g.layer[g.dst] == 2].sum())


def test_cycle_between_modules_is_reported():
    g, _ = _dag("[4,1,4]")
    labels = np.where(g.layer % 2 == 0, 0, 1)                  # alternate layers: 0 -> 1 -> 0 -> ...
    dag = module_dag(g, Partition(labels))
    assert not dag.acyclic and {m.level for m in dag.modules} == {0}


def test_reachability_against_paths():
    g, _ = _dag("[6,3,3,3]")
    r_in, r_out = reachability(g, towards="inputs"), reachability(g, towards="outputs")
    outs = g.units_in_layer(3)
    assert r_in[outs].sum(axis=1).tolist() == [4, 4, 4]
    assert r_out[g.units_in_layer(0)].sum(axis=1).tolist() == [2] * 6


def test_nested_levels_are_serialised():
    g, _ = _dag("[4,2,4] 1 HL")
    h = Hierarchy.from_levels([np.arange(g.n_units), np.array([0, 0, 1, 1, 0, 1, 0, 0, 1, 1]), [0, 0]],
                              module_level=1, method="test")
    d = module_dag(g, h).to_dict()
    assert len(d["nested_levels"]) == 3 and d["nested_levels"][2] == [0] * g.n_units
    assert d["n_modules"] == 2
