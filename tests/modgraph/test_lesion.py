"""Lesion tests (clusterability.md §6): numpy forward with silenced units, random same-size controls."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modgraph.lesion import _combine, classify_lesion, importance, lesion_accuracy
from modgraph.network import Layer, LayeredNetwork


def _relay_net(seed=0):
    """4 classes; hidden units 0-3 relay the input (module 0), units 4-7 feed nothing (module 1)."""
    rng = np.random.default_rng(seed)
    w1 = np.zeros((8, 4))
    w1[:4] = np.eye(4)
    w1[4:] = rng.uniform(0.1, 1.0, (4, 4))
    w2 = np.zeros((4, 8))
    w2[:, :4] = np.eye(4)
    net = LayeredNetwork([Layer.from_dense(w1, rng.normal(0, 0.01, 8) * [0, 0, 0, 0, 1, 1, 1, 1]),
                          Layer.from_dense(w2, activation="softmax")])
    y = np.repeat(np.arange(4), 25)
    x = np.eye(4)[y] + rng.uniform(0, 0.3, (100, 4))
    labels = np.concatenate([[-1] * 4, [0] * 4, [1] * 4, [-1] * 4])   # inputs/outputs are never lesioned
    return net, x, y, labels


def test_silencing_equals_zeroing_incoming_weights_and_bias():
    rng = np.random.default_rng(1)
    layers = [Layer.from_dense(rng.normal(size=(6, 5)), rng.normal(size=6)),
              Layer.from_dense(rng.normal(size=(7, 6)), rng.normal(size=7)),
              Layer.from_dense(rng.normal(size=(3, 7)), activation="softmax")]
    net = LayeredNetwork(layers)
    x, y = rng.normal(size=(200, 5)), rng.integers(0, 3, 200)
    w, b = layers[1].dense(), layers[1].bias.copy()
    w[[0, 3, 4]] = 0.0
    b[[0, 3, 4]] = 0.0
    cut = LayeredNetwork([layers[0], Layer.from_dense(w, b), layers[2]])
    want = float((cut.forward(x).argmax(1) == y).mean())
    assert lesion_accuracy(net, x, y, silence={2: [0, 3, 4]}) == want
    assert lesion_accuracy(net, x, y) == float((net.forward(x).argmax(1) == y).mean())


def test_the_module_that_carries_the_signal_is_important_the_idle_one_prunable():
    net, x, y, labels = _relay_net()
    r = importance(net, labels, x, y, n_random=20, seed=3)
    assert r["base_accuracy"] == 1.0
    carry, idle = r["modules"]
    assert (carry["layer"], carry["label"], carry["size"]) == (1, 0, 4)
    assert carry["accuracy"] == 0.25 and carry["diff"] == -0.75
    assert carry["p"] == pytest.approx(1 / 21) and carry["class"] == "important"
    assert carry["per_class_accuracy"] == [1.0, 0.0, 0.0, 0.0]       # all-zero logits: argmax picks class 0
    assert idle["diff"] == 0.0 and idle["p"] == 1.0 and idle["class"] == "prunable"
    assert 0.25 < carry["mean_random_accuracy"] < 1.0


def test_same_seed_same_result_and_the_random_sets_have_the_modules_size():
    net, x, y, labels = _relay_net()
    assert importance(net, labels, x, y, n_random=5, seed=1) == importance(net, labels, x, y, n_random=5, seed=1)
    labels = labels.copy()
    labels[5] = -1                                            # a removed hidden unit is never lesioned
    r = importance(net, labels, x, y, n_random=30, seed=0)
    assert [m["size"] for m in r["modules"]] == [3, 4]


@pytest.mark.parametrize("diff, p, size, want", [
    (-0.05, 1 / 21, 40, "important"), (0.0, 1.0, 40, "prunable"), (-0.002, 1 / 21, 40, "sig-but-not-diff"),
    (-0.05, 0.5, 40, "diff-but-not-sig"), (-0.05, 1.0, 40, "least_important"), (0.0, 0.5, 40, "other"),
    (-0.5, 1 / 21, 256, "complete"), (-0.5, 1 / 21, 12, "small")])
def test_lesion_classes(diff, p, size, want):
    assert classify_lesion(diff, p, 20, size, 256) == want


def test_combined_statistics_follow_fishers_method():
    mods = [{"mean_percentile": q, "range_percentile": 1.0} for q in (1 / 21, 2 / 21, 1 / 21)]
    out = _combine(mods, 20)
    q = np.array([1 / 21, 2 / 21, 1 / 21]) - 0.5 / 21
    assert out["fisher_p_mean"] == pytest.approx(stats.chi2.sf(-2 * np.log(q).sum(), 6))
    assert out["fisher_p_range"] > 0.9
    assert out["chi2_p_mean"] == pytest.approx(stats.chisquare(np.bincount([0, 1, 0], minlength=21)).pvalue)


def test_bad_labels_are_rejected():
    net, x, y, labels = _relay_net()
    with pytest.raises(ValueError, match=r"expected one label per unit of the network \(16\), got shape \(12,\)"):
        importance(net, labels[:12], x, y)
    with pytest.raises(ValueError, match="n_random must be at least 1, got 0"):
        importance(net, labels, x, y, n_random=0)
