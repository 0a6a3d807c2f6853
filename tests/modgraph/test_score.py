import numpy as np
import pytest

from modgraph.errors import FormatError
from modgraph.graph import build_unit_graph, condense
from modgraph.partition import Partition
from modgraph.score import score, truth_from_dict, truth_from_metadata
from modgraph.testing import _connect, _masked, labels_from_modules, sculpted_networks
from trainers.tasks import load_task

NETS = sculpted_networks()


def _truth(task):
    t = load_task(task)
    return truth_from_dict(t.ground_truth(), task_name=t.name)


def _score(net, modules, task, **kw):
    g = condense(build_unit_graph(net))
    return score(g, Partition(labels_from_modules(g, modules)), _truth(task), **kw)


def test_424_ideal_is_input_separable_and_one_module_is_not():
    net, _, _, modules = NETS["[4,2,4]"]
    s = _score(net, modules, "input-separable")
    assert s["success"] is True and s["criteria"]["input_separability"]["evidence"]["found"] == [[0, 1], [2, 3]]
    assert s["input"] == {"nmi": 1.0, "ari": 1.0} and s["output"]["nmi"] == 1.0
    merged = [set().union(*modules)]
    s = _score(net, merged, "input-separable")
    assert s["success"] is False and s["criteria"]["input_separability"]["evidence"]["found"] == [[0, 1, 2, 3]]
    assert s["input"]["nmi"] == 0.0


def test_6333_both_criteria():
    net, _, _, modules = NETS["[6,3,3,3]"]
    s = _score(net, modules, "both")
    assert s["success"] is True and s["success_criteria"] == ["input_separability", "output_subfunction"]
    assert s["criteria"]["output_subfunction"]["evidence"]["found"] == [[0], [1], [2]]


def test_41216_reuse_and_its_failure_when_the_first_layer_splits_off():
    net, _, _, modules = NETS["[4,1,2,16]"]
    assert _score(net, modules, "reused")["success"] is True
    inputs_only = {u for u in modules[0] if u[0] == 0}
    split = [inputs_only, modules[0] - inputs_only, modules[1], modules[2]]
    s = _score(net, split, "reused")
    assert s["success"] is False
    assert s["criteria"]["reuse"]["evidence"]["module_holds_first_hidden_layer"] is False


def test_414_one_module():
    net, _, _, modules = NETS["[4,1,4]"]
    assert _score(net, modules, "none")["success"] is True
    two = [modules[0] - {(3, 0)}, {(3, 0)}]
    assert _score(net, two, "none")["success"] is False


def test_hidden_separability_is_a_property_of_the_paths():
    net, _, _, modules = NETS["[4,2,4]"]
    ok = _score(net, modules, "input-separable", criteria=["hidden_separability"])
    assert ok["criteria"]["hidden_separability"]["success"] is True
    masks = [l.mask.copy() for l in net.layers]
    masks[1][1, 0] = True                                     # h1a also feeds h2b: h1a reaches y1..y4
    s = _score(_masked(masks), modules, "input-separable", criteria=["hidden_separability"])
    res = s["criteria"]["hidden_separability"]
    assert res["success"] is False and [1, 0] in res["evidence"]["units_reaching_several_groups"]


def _hierarchy_net(hidden_layers):
    """x1..4 -> a, x5..8 -> b -> m (intermediate) -> (3 HL: p, q ->) outputs P odd, Q even."""
    m1 = _connect((2, 8), [(0, [0, 1, 2, 3]), (1, [4, 5, 6, 7])])
    m2 = _connect((1, 2), [(0, [0, 1])])
    if hidden_layers == 3:
        m3 = _connect((2, 1), [([0, 1], 0)])
        m4 = _connect((4, 2), [([0, 2], 0), ([1, 3], 1)])
        masks = [m1, m2, m3, m4]
        modules = [{(0, i) for i in range(4)} | {(1, 0)}, {(0, i) for i in range(4, 8)} | {(1, 1)}, {(2, 0)},
                   {(3, 0), (4, 0), (4, 2)}, {(3, 1), (4, 1), (4, 3)}]
    else:
        masks = [m1, m2, np.ones((4, 1), bool)]
        modules = [{(0, i) for i in range(4)} | {(1, 0)}, {(0, i) for i in range(4, 8)} | {(1, 1)},
                   {(2, 0)} | {(3, k) for k in range(4)}]
    return _masked(masks), modules


@pytest.mark.parametrize("hidden", [2, 3])
def test_hierarchy_all_modules_for_the_depth(hidden):
    net, modules = _hierarchy_net(hidden)
    s = _score(net, modules, "hierarchy-u2")
    assert s["success"] is True, s["criteria"]["all_modules"]
    assert s["criteria"]["single_intermediate"]["success"] is True
    assert s["criteria"]["output_subfunction"]["success"] is (hidden == 3)
    merged = [modules[0] | modules[1]] + modules[2:]
    assert _score(net, merged, "hierarchy-u2")["success"] is False


def test_truth_must_match_the_network():
    net, _, _, modules = NETS["[4,2,4]"]
    with pytest.raises(ValueError, match="ground truth is for 6 inputs and 3 outputs, the network has 4 and 4"):
        _score(net, modules, "both")


def test_truth_from_metadata_and_bad_truth():
    gt = load_task("both").ground_truth()
    t = truth_from_metadata({"ground_truth": gt, "task": {"name": "both"}})
    assert t.success == ["input_separability", "output_subfunction"] and t.input_groups == [[0, 1], [2, 3], [4, 5]]
    assert truth_from_metadata({}) is None
    with pytest.raises(FormatError, match=r"t.json: ground truth: expected a 'modgraph-ground-truth' JSON object"):
        truth_from_dict({"format": "other"}, source="t.json")
