"""``subfunctions``: the threshold-free detector of issue 8 (modularity on two views and reach signatures, MDL referees)."""
import numpy as np
import pytest

from modgraph.detect import detect
from modgraph.detect.subfunctions import closure_edges, signature_partition
from modgraph.graph import UnitGraph, build_unit_graph, condense
from modgraph.partition import canonical_labels
from modgraph.testing import labels_from_modules, random_network, sculpted_networks

NETS = sculpted_networks()


@pytest.mark.parametrize("name", ["[4,2,4]", "[4,1,2,16]", "[4,1,4]", "dense [4,8,8,4]", "[4,2,4] 1 HL"])
def test_hand_built_nets_give_the_spec_partitions(name):
    net, _, _, modules = NETS[name]
    g = build_unit_graph(net)
    p = detect(g, method="subfunctions", seed=0)
    assert p.labels.tolist() == canonical_labels(labels_from_modules(g, modules)).tolist()


def test_hand_built_6333_keeps_the_pairs_apart_and_outputs_in_three_modules():
    """Spec §9.2 wants each output as its own module; here each output joins one of the pair
    modules feeding it (a different one each), which the §6 criteria score as success."""
    net, _, _, modules = NETS["[6,3,3,3]"]
    g = build_unit_graph(net)
    p = detect(g, method="subfunctions", seed=0)
    pairs = labels_from_modules(g, modules[:3])
    hidden_and_inputs = pairs >= 0
    assert p.labels[hidden_and_inputs].tolist() == canonical_labels(pairs[hidden_and_inputs]).tolist()
    outputs = p.labels[g.layer == 3]
    assert len(set(outputs.tolist())) == 3
    assert p.n_modules == 3


def test_reused_module_is_found_by_the_unit_graph_view():
    net, _, _, _ = NETS["[4,1,2,16]"]
    p = detect(build_unit_graph(net), method="subfunctions", seed=0)
    assert p.stats["chosen"] == "unit"
    assert p.stats["unit"]["dl"] <= p.stats["closure"]["dl"]


@pytest.mark.parametrize("seed", [0, 7])
def test_same_seed_same_labels(seed):
    g = condense(build_unit_graph(random_network([8, 12, 12, 12, 4], density=0.25, seed=1)))
    a = detect(g, method="subfunctions", seed=seed)
    b = detect(g, method="subfunctions", seed=seed)
    assert a.labels.tolist() == b.labels.tolist() and a.stats == b.stats
    assert a.method == "subfunctions" and a.seed == seed


def test_condensed_away_units_are_minus_one():
    net, _, _, _ = NETS["[4,2,4]"]
    g = build_unit_graph(net)
    p = detect(g, method="subfunctions", seed=0)
    alive = np.isin(g.original_id, condense(g).original_id)
    assert (p.labels[~alive] == -1).all() and (p.labels[alive] >= 0).all()


def test_closure_joins_every_ancestor_descendant_pair():
    g = condense(build_unit_graph(random_network([5, 6, 6, 3], density=0.4, seed=2)))
    src, dst = closure_edges(g)
    adj = np.zeros((g.n_units, g.n_units), dtype=bool)
    adj[g.src, g.dst] = True
    reach, step = np.zeros_like(adj), np.eye(g.n_units, dtype=bool)
    for _ in range(g.n_layers - 1):
        step = (step.astype(int) @ adj.astype(int)) > 0
        reach |= step
    assert sorted(zip(src.tolist(), dst.tolist())) == sorted(zip(*np.nonzero(reach)))


def test_bad_input_is_a_clear_error():
    g = build_unit_graph(NETS["[4,2,4]"][0])
    with pytest.raises(ValueError, match="seed"):
        detect(g, method="subfunctions", seed=-1)
    with pytest.raises(ValueError, match="n_restarts"):
        detect(g, method="subfunctions", seed=0, n_restarts=0)
    with pytest.raises(TypeError, match="UnitGraph"):
        detect("net.h5", method="subfunctions", seed=0)
    empty = UnitGraph(layer=np.array([0, 1]), index=np.array([0, 0]), src=np.zeros(0, int), dst=np.zeros(0, int),
                      value=np.zeros(0), widths=(1, 1))
    with pytest.raises(ValueError, match="no edges"):
        detect(empty, method="subfunctions", seed=0)


@pytest.mark.parametrize("name", sorted(NETS))
def test_signature_of_the_spec_partition_is_the_spec_partition(name):
    net, _, _, modules = NETS[name]
    g = condense(build_unit_graph(net))
    truth = canonical_labels(labels_from_modules(g, modules))
    assert signature_partition(g, truth).tolist() == truth.tolist()


def test_signature_joins_input_groups_sharing_a_first_layer_unit_and_splits_outputs_by_function():
    """[4,1,2,16] with a proposal that cuts the inputs in two and lumps every unit with them: the
    signature puts all inputs and the shared first layer in one module and the two output
    functions (odd / even outputs, taken from the proposal) in two others."""
    net, _, _, modules = NETS["[4,1,2,16]"]
    g = condense(build_unit_graph(net))
    truth = canonical_labels(labels_from_modules(g, modules))
    proposal = np.zeros(g.n_units, dtype=np.int64)
    proposal[g.units_in_layer(0)[2:]] = 1                      # inputs {x1,x2} | {x3,x4}
    outs = g.units_in_layer(g.n_layers - 1)
    proposal[outs] = 2 + truth[outs]                            # the output functions
    assert signature_partition(g, proposal).tolist() == truth.tolist()
