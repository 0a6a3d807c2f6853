"""Shuffle nulls and significance (clusterability.md §4, §10 A.3, A.4, B.8; issue 7)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from modgraph import cli
from modgraph.detect import DETECTORS
from modgraph.graph import build_unit_graph, drop_isolated
from modgraph.io import save
from modgraph.network import Layer, LayeredNetwork
from modgraph.nulls import STATISTICS, _summarise, shuffle_graph, significance
from modgraph.partition import Partition


def _random_net(widths, seed, density=0.5):
    rng = np.random.default_rng(seed)
    return LayeredNetwork([Layer.from_dense(rng.normal(size=(b, a)) * (rng.random((b, a)) < density))
                           for a, b in zip(widths[:-1], widths[1:])])


def _planted_net(n_modules=3, per_layer=(4, 3, 3, 2), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    truth = [np.repeat(np.arange(n_modules), p) for p in per_layer]
    layers = []
    for l in range(len(per_layer) - 1):
        same = truth[l + 1][:, None] == truth[l][None, :]
        w = rng.uniform(0.5, 1.5, same.shape) * np.where(same, 1.0, noise)
        layers.append(Layer.from_dense(w))
    return LayeredNetwork(layers)


def _blocks(graph):
    return [graph.layer_block(l).toarray() for l in range(graph.n_layers - 1)]


def test_layer_shuffle_keeps_each_layers_multiset_and_moves_the_mask():
    g = build_unit_graph(_random_net([12, 9, 7, 4], seed=1))
    s = shuffle_graph(g, "layer", seed=5)
    assert np.array_equal(s.layer, g.layer) and np.array_equal(s.index, g.index)
    for a, b in zip(_blocks(g), _blocks(s)):
        assert np.array_equal(np.sort(a.ravel()), np.sort(b.ravel()))          # zeros included
    assert any(not np.array_equal(a != 0, b != 0) for a, b in zip(_blocks(g), _blocks(s)))
    assert np.all(s.layer[s.dst] == s.layer[s.src] + 1)


def test_layer_nonzero_shuffle_keeps_the_exact_mask_and_the_nonzero_multiset():
    g = build_unit_graph(_random_net([12, 9, 7, 4], seed=2))
    s = shuffle_graph(g, "layer_nonzero", seed=5)
    for a, b in zip(_blocks(g), _blocks(s)):
        assert np.array_equal(a != 0, b != 0)
        assert np.array_equal(np.sort(a[a != 0]), np.sort(b[b != 0]))
    assert not np.array_equal(np.concatenate([b.ravel() for b in _blocks(g)]),
                              np.concatenate([b.ravel() for b in _blocks(s)]))


def test_shuffles_act_on_the_cleaned_graph_only():
    net = _random_net([10, 6, 3], seed=3)
    w0 = net.layers[0].dense()
    w0[:, [0, 4]] = 0.0                                       # inputs 0 and 4 are isolated
    net = LayeredNetwork([Layer.from_dense(w0), net.layers[1]])
    clean = drop_isolated(build_unit_graph(net))
    s = shuffle_graph(clean, "layer", seed=0)
    assert s.n_units == clean.n_units == build_unit_graph(net).n_units - 2
    assert not {0, 4} & set(s.original_id[s.src].tolist())
    res = significance(net, method="spectral", options={"k": 2}, n_shuffles=3, seed=1)
    assert res.n_units == clean.n_units and res.clean == "drop_isolated"


def test_p_z_and_significance_follow_the_formulas():
    r = _summarise("spectral", "layer", "drop_isolated", 0, {}, 5.0, [4.0, 5.0, 6.0, 7.0], {}, 0.0, 10)
    assert r.p == pytest.approx(2 / 5)                        # only 4.0 is below; the tie does not count
    sd = np.std([4.0, 5.0, 6.0, 7.0])
    assert r.z == pytest.approx((5.0 - 5.5) / sd) and not r.significant
    r = _summarise("spectral", "layer", "drop_isolated", 0, {}, 3.0, [4.0, 5.0, 6.0, 7.0], {}, 0.0, 10)
    assert r.p == pytest.approx(1 / 5) and r.significant
    r = _summarise("modularity", "layer", "condense", 0, {}, 0.6, [0.1, 0.7, 0.2], {}, 0.0, 10)
    assert r.direction == "higher" and r.p == pytest.approx(2 / 4) and not r.significant
    r = _summarise("spectral", "layer", "drop_isolated", 0, {}, 1.0, [2.0, 2.0], {}, 0.0, 10)
    assert r.z is None and r.significant


def test_planted_modules_beat_every_shuffle():
    res = significance(_planted_net(noise=0.05), method="spectral", options={"k": 3}, n_shuffles=19, seed=0)
    assert res.true_value < 0.3 and min(res.null_values) > 0.9
    assert res.p == pytest.approx(1 / 20) and res.significant and res.z < -5
    assert res.true_stats["k"] == 3 and len(res.null_values) == 19


def test_a_random_net_is_not_significant_against_its_own_shuffles():
    res = significance(_random_net([30, 20, 20, 8], seed=4, density=0.5), method="spectral",
                       options={"k": 4}, n_shuffles=19, seed=0)
    assert not res.significant and res.p > 0.2


def test_same_seed_same_p_and_z_whatever_the_number_of_workers():
    net = _random_net([20, 12, 12, 5], seed=5, density=0.4)
    a = significance(net, method="spectral", null="layer_nonzero", options={"k": 3}, n_shuffles=6, seed=9)
    b = significance(net, method="spectral", null="layer_nonzero", options={"k": 3}, n_shuffles=6, seed=9,
                     n_jobs=2)
    assert a.null_values == b.null_values and (a.p, a.z) == (b.p, b.z)
    c = significance(net, method="spectral", null="layer_nonzero", options={"k": 3}, n_shuffles=6, seed=10)
    assert c.null_values != a.null_values


def test_the_statistic_is_read_by_key_with_its_direction(monkeypatch):
    calls = []

    def fake(graph, *, seed, **options):
        calls.append(graph.n_edges)
        return Partition(np.zeros(graph.n_units, int), method="fake", stats={"score": float(graph.weight.max())})

    monkeypatch.setitem(DETECTORS, "fake", fake)
    monkeypatch.setitem(STATISTICS, "fake", ("score", "higher"))
    net = LayeredNetwork([Layer.from_dense(np.array([[9.0, 1.0, 0.0], [0.0, 2.0, 3.0]]))])
    res = significance(net, method="fake", n_shuffles=4, seed=0)
    assert res.statistic == "score" and res.true_value == 9.0 and res.null_values == [9.0] * 4
    assert res.clean == "condense" and res.p == 1 / 5 and res.significant and len(calls) == 5

    monkeypatch.setitem(DETECTORS, "fake", lambda graph, *, seed: Partition(np.zeros(graph.n_units, int)))
    with pytest.raises(KeyError, match=r"did not report stats\['score'\]"):
        significance(net, method="fake", n_shuffles=2)


def test_bad_arguments_list_the_choices():
    net = _random_net([6, 4, 2], seed=0)
    with pytest.raises(ValueError, match="unknown null 'rows'; choose one of layer, layer_nonzero"):
        significance(net, null="rows")
    with pytest.raises(ValueError, match="no statistic known for method 'louvain'; choose one of modularity, "
                                         "nested-sbm, sbm, spectral"):
        significance(net, method="louvain")
    with pytest.raises(ValueError, match="n_shuffles must be an int >= 1, got 0"):
        significance(net, n_shuffles=0)


def test_cli_prints_the_table_and_writes_json_and_histogram(tmp_path, capsys):
    path = tmp_path / "planted.h5"
    save(_planted_net(noise=0.05), path)
    out = tmp_path / "sig"
    assert cli.main(["significance", str(path), "--k", "3", "--shuffles", "9", "--seed", "2",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "p  0.1000 (min 0.1000)" in text and "significant  yes" in text
    data = json.loads((out / "planted-spectral-layer.json").read_text())
    assert data["p"] == 0.1 and data["n_shuffles"] == 9 and len(data["null_values"]) == 9
    assert data["options"] == {"k": 3} and data["seed"] == 2
    assert (out / "planted-spectral-layer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.part"))
    assert cli.main(["significance", str(path), "--method", "modularity", "--k", "3", "--out", str(out)]) == 2
    assert "--k applies to --method spectral only" in capsys.readouterr().err


def test_modularity_is_tested_in_its_own_direction():
    net = _planted_net(noise=0.05)
    res = significance(net, method="modularity", n_shuffles=5, seed=0)
    assert res.statistic == "modularity" and res.direction == "higher" and res.clean == "condense"
    assert res.true_value > max(res.null_values) and res.p == pytest.approx(1 / 6) and res.z > 0
