"""The accept / revert / halve search, the grid's tie rule, and end-to-end sculpting (spec §4, §9.3)."""
import pytest
import torch

import trainers.sculpt as sculpt
from trainers.config import task_train_config
from trainers.model import MaskedMLP
from trainers.sculpt import SculptConfig, _choose, sculpt_grid, search
from trainers.tasks import load_task


def _fake(monkeypatch, limits):
    """Candidates pass iff their target ≤ limits[network]; records the targets tried."""
    tried = {k: [] for k in range(len(limits))}
    slots = {}

    def candidates(net, trainable, targets, phase, saliency):
        slots["now"] = [(k, targets[k]) for k in trainable]
        for k in trainable:
            tried[k].append(targets[k])
        return net.select(trainable)

    def train(cand, x, y, cfg, *, seed):
        acc = torch.tensor([1.0 if t <= limits[k] else 0.5 for k, t in slots["now"]], dtype=torch.float64)
        return acc, torch.zeros(len(acc))

    monkeypatch.setattr(sculpt, "_candidates", candidates)
    monkeypatch.setattr(sculpt, "train", train)
    return tried


def test_search_schedules_reverts_halves_and_stops_at_p_min(monkeypatch):
    tried = _fake(monkeypatch, [33.0, 100.0, 96.0])
    net = MaskedMLP([2, 3, 1], n_stack=3, seed=0)
    runs = search(net, None, None, phase="unit", start=[0.0, 0.0, 90.0], steps=[10.0, 40.0, 5.0], p_min=1.0,
                  accuracy=[1.0] * 3, loss=[0.0] * 3, config=SculptConfig(), seed=0)
    # 40 fails -> linear, step 5: 35 fails -> 2.5: 32.5 passes (step kept) -> 35 fails -> 1.25: 33.75 fails
    # -> step max(0.625, p_min) = 1: 33.5 fails with step <= p_min -> stop at 32.5
    assert tried[0] == [10, 20, 30, 40, 35, 32.5, 35, 33.75, 33.5]
    assert runs[0]["pct"] == 32.5
    assert [h["accepted"] for h in runs[0]["history"]] == [True, True, True, False, False, True, False, False, False]
    assert [h["mode"] for h in runs[0]["history"]][3:5] == ["scheduled", "linear"]
    # targets >= 100 are rejections without training: 120 and every 100 below are never trained
    assert tried[1] == [40.0, 80.0, 90.0, 95.0, 97.5, 98.75, 99.75] and runs[1]["pct"] == 99.75
    assert runs[1]["history"][2] == {**runs[1]["history"][2], "target": 120.0, "accepted": False, "accuracy": None}
    assert runs[1]["history"][-1]["target"] == 100.75
    # start 90 (the edge phase starts at the unit-pruned sparsity): 95 ok, 100 rejected, 97.5, 96.25 fail, 96 ok
    assert tried[2] == [95.0, 97.5, 96.25, 96.0, 97.0] and runs[2]["pct"] == 96.0


def test_search_keeps_the_last_accepted_network(monkeypatch):
    tried = _fake(monkeypatch, [15.0])
    net = MaskedMLP([2, 3, 1], seed=0)
    before = net.theta.clone()
    runs = search(net, None, None, phase="edge", start=[0.0], steps=[10.0], p_min=5.0, accuracy=[1.0],
                  loss=[0.0], config=SculptConfig(), seed=0)
    assert tried[0] == [10.0, 20.0, 15.0, 20.0] and runs[0]["pct"] == 15.0
    assert torch.equal(net.theta, before)             # the fake candidates are copies of the net


def test_choose_takes_fewest_edges_first_in_pe_then_pu_order():
    pus, pes = [70.0, 65.0], [2.5, 2.0]
    slot = [(i, j) for i in range(2) for j in range(2)]
    cell = lambda e, ok=True: {"edges": e, "meets_gate": ok, "accuracy": 1.0 if ok else 0.9}
    grid = [cell(20), cell(18), cell(18), cell(10, ok=False)]   # (70,2.5) (70,2.0) (65,2.5) (65,2.0)
    assert slot[_choose(grid, slot, len(pus), len(pes))] == (1, 0)      # Pe 2.5 scanned before Pe 2.0
    grid[1] = cell(17)
    assert slot[_choose(grid, slot, len(pus), len(pes))] == (0, 1)
    none = [cell(5, ok=False), {"edges": 9, "meets_gate": False, "accuracy": 0.99}, cell(3, False), cell(4, False)]
    assert _choose(none, slot, 2, 2) == 1                              # nothing passes: most accurate


# -- end-to-end acceptance (spec §7.2 / §9.3, one seed each) -------------------------------------
CASES = [("[4,2,4]", 0, None), ("[6,3,3,3]", 0, 18), ("[4,1,2,16]", 0, None), ("[4,1,4]", 0, None)]


@pytest.fixture(scope="module")
def sculpted():
    out = {}
    for name, seed, _ in CASES:
        task = load_task(name)
        x, y = task.truth_table()
        cfg = SculptConfig(train=task_train_config(task, 2))
        out[name] = (task, sculpt_grid(x, y, [task.n_inputs, 24, 24, task.n_outputs], config=cfg, seed=seed))
    return out


@pytest.mark.parametrize("name, seed, max_edges", CASES)
def test_sculpted_exemplars_are_exact_and_at_least_97_percent_sparse(sculpted, name, seed, max_edges):
    task, res = sculpted[name]
    x, y = (torch.from_numpy(a) for a in task.truth_table())
    pred = (res.net.forward(x)[0] > 0.5).float()
    assert torch.equal(pred, y) and res.accuracy == 1.0 and res.meets_gate
    assert res.sparsity >= 97.0, (res.edges, res.sparsity)
    if max_edges is not None:
        assert res.edges <= max_edges
    assert res.history[0]["phase"] == "dense" and res.history[-1]["phase"] == "edge"
    kept = [h for h in res.history if h["phase"] == "retrain" or (h["phase"] == "edge" and h["accepted"])]
    assert kept[-1]["edges"] == res.edges            # the history replays to the exported network
    assert len(res.grid) == 14 * 5 and bool((res.net.theta[res.net.mask == 0] == 0).all())
    best = min(g["edges"] for g in res.grid if g["meets_gate"])
    assert res.edges == best


def test_grid_is_reproducible_for_a_seed():
    task = load_task("[4,2,4]")
    x, y = task.truth_table()
    cfg = SculptConfig(train=task_train_config(task, 1), unit_steps=(30.0, 20.0), edge_steps=(5.0, 4.0))
    a, b = (sculpt_grid(x, y, [4, 12, 4], config=cfg, seed=3) for _ in range(2))
    assert torch.equal(a.net.theta, b.net.theta) and a.history == b.history and a.grid == b.grid


def test_edge_only_baseline_prunes_from_the_dense_net():
    task = load_task("[4,2,4]")
    x, y = task.truth_table()
    cfg = SculptConfig(train=task_train_config(task, 1), unit_steps=(), edge_steps=(10.0, 5.0))
    res = sculpt_grid(x, y, [4, 12, 4], config=cfg, seed=0)
    assert res.pu is None and [g["pu"] for g in res.grid] == [None, None]
    assert [h["phase"] for h in res.history][:2] == ["dense", "edge"]
    assert res.history[1]["target"] == res.pe                 # the first target: 0 % + Pe
    assert res.meets_gate and res.sparsity > 50.0


def test_dense_net_missing_the_gate_is_not_retrained_longer_by_default():
    """As the authors' code, pruning starts from the dense net whatever its accuracy (spec §3): the
    epochs stay as configured. ``max_dense_epochs`` keeps the opt-in retry (+10 epochs up to it)."""
    x, y = (torch.from_numpy(a) for a in load_task("[4,2,4]").truth_table())
    train = task_train_config(load_task("[4,2,4]"), 1, lr=1e-6, epochs=1)      # cannot learn: misses 100 %
    base = dict(unit_steps=(), edge_steps=(50.0,))
    res = sculpt_grid(x, y, [4, 8, 4], config=SculptConfig(train=train, **base), seed=0)
    assert res.history[0]["phase"] == "dense" and res.history[0]["accuracy"] < 1.0
    assert res.epochs == 1 and res.history[0]["epochs"] == 1
    res = sculpt_grid(x, y, [4, 8, 4], config=SculptConfig(train=train, max_dense_epochs=21, **base), seed=0)
    assert res.epochs == 21 and res.history[0]["epochs"] == 21
