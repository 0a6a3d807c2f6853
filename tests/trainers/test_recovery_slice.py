"""A fast slice of benchmarks/results.py, and the negative controls of Neural Sculpting spec §9.4."""
import pytest
import torch

from modgraph.analyze import analyze_network
from modgraph.score import truth_from_dict
from modgraph.study import analyze_many, success_table
from trainers.config import task_train_config
from trainers.export import to_network
from trainers.sculpt import SculptConfig, search
from trainers.study import sculpt_cells
from trainers.tasks import load_task
from trainers.train import train


def test_slice_of_the_exemplar_table(tmp_path):
    runs = sculpt_cells([("input-separable", (24, 24), 0), ("both", (24, 24), 0)], tmp_path, progress=False)
    assert [i["accuracy"] for _, i in runs] == [1.0, 1.0] and all(i["sparsity"] >= 97 for _, i in runs)
    rows = analyze_many(runs, methods=["sculpting", "modularity"], progress=False)
    table = success_table(rows, ["task"], "method")
    assert table[("input-separable",)]["sculpting"] == (1.0, 1) and table[("both",)]["sculpting"] == (1.0, 1)
    again = sculpt_cells([("both", (24, 24), 0)], tmp_path, progress=False)   # cached: no retraining
    assert again[0][0] == runs[1][0]


def _truth(task):
    return truth_from_dict(task.ground_truth(), task_name=task.name)


def test_negative_control_reuse_with_one_hidden_layer(tmp_path):
    (path, info), = sculpt_cells([("reused", (24,), 0)], tmp_path, progress=False)
    from modgraph.analyze import analyze_file
    a = analyze_file(path, method="sculpting")
    assert info["accuracy"] == 1.0 and a.scores["criteria"]["reuse"]["success"] is False


def _dense_and_unit_pruned(task, widths, seed=0):
    x, y = (torch.as_tensor(v) for v in task.truth_table())
    cfg = SculptConfig(train=task_train_config(task, len(widths) - 2))
    from trainers.model import MaskedMLP
    net = MaskedMLP(widths, seed=seed)
    acc, loss = train(net, x, y, task_train_config(task, len(widths) - 2, epochs=40), seed=seed)
    dense = to_network(net)
    units = net.repeat(1)
    search(units, x, y, phase="unit", start=[0.0], steps=[20.0], p_min=100.0 / net.n_hidden,
           accuracy=[float(acc[0])], loss=[float(loss[0])], config=cfg, seed=seed)
    return float(acc[0]), dense, to_network(units)


def test_negative_control_input_separability_on_dense_and_unit_pruned_nets():
    task = load_task("input-separable")
    acc, dense, unit_pruned = _dense_and_unit_pruned(task, [4, 24, 24, 4])
    assert acc == 1.0
    assert unit_pruned.summary()["n_edges"] < dense.summary()["n_edges"]
    for net in (dense, unit_pruned):
        s = analyze_network(net, method="sculpting", truth=_truth(task)).scores
        assert s["criteria"]["input_separability"]["success"] is False
