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


def test_sculpting_in_two_processes_gives_the_same_files_as_in_one(tmp_path):
    """workers=2 (spawned processes, costliest first) writes the networks one process writes."""
    import h5py
    import numpy as np

    from modgraph.io import load
    from trainers.study import cell_cost

    cells = [("reuse-u2", (8, 8), 0), ("overlap-o0-u1", (12,), 1), ("input-separable", (8,), 2)]
    assert cell_cost(("hierarchy-u8", (60,) * 4, 0)) > 10 * cell_cost(("overlap-o0-u1", (24,), 1))
    one = sculpt_cells(cells, tmp_path / "one", grid=False, progress=False)
    two = sculpt_cells(cells, tmp_path / "two", grid=False, progress=False, workers=2)
    assert [i for _, i in one] == [i for _, i in two]                 # same order, same accuracy/edges
    for (a, _), (b, _) in zip(one, two):
        na, nb = load(a), load(b)
        ma, mb = na.metadata, nb.metadata
        assert set(ma.pop("timings")) == set(mb.pop("timings")) == {"dense_s", "unit_s", "edge_s"}
        assert ma == mb                                                 # all but the wall times
        for la, lb in zip(na.layers, nb.layers):
            assert (la.weight != lb.weight).nnz == 0 and np.array_equal(la.bias, lb.bias)
        with h5py.File(a) as fa, h5py.File(b) as fb:
            assert sorted(fa.attrs) == sorted(fb.attrs)
    # an unknown task is refused before anything is trained
    from modgraph.tasks.shipped import UnknownTaskError
    with pytest.raises(UnknownTaskError, match=r"unknown task 'no-such-task'"):
        sculpt_cells([("reuse-u2", (8,), 3), ("no-such-task", (8,), 0)], tmp_path / "bad", grid=False, workers=2)
    assert not (tmp_path / "bad").exists()
    # a cell that fails in its worker names itself; the cell running beside it is finished and kept
    with pytest.raises(RuntimeError, match=r"sculpting reuse-u2 0 seed 0 failed: "):
        sculpt_cells([("reuse-u2", (0,), 0), ("reuse-u2", (8,), 3)], tmp_path / "bad", grid=False,
                     progress=False, workers=2)
    assert (tmp_path / "bad" / "reuse-u2" / "8-s3" / "network.h5").exists()
    assert not (tmp_path / "bad" / "reuse-u2" / "0-s0" / "network.h5").exists()
