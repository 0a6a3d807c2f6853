"""Spectral clustering and n-cut (clusterability.md §2, §3, §10 A.1, A.5, B.6)."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from modgraph.detect import detect
from modgraph.detect._kmeans import kmeans
from modgraph.detect.spectral import _clean, ncut, spectral, spectral_embedding
from modgraph.graph import UnitGraph, build_unit_graph
from modgraph.network import Layer, LayeredNetwork
from modgraph.partition import Partition, canonical_labels


def _net_from_kernels(*kernels_in_out):
    """Kernels given as (in × out), the spec's orientation."""
    return LayeredNetwork([Layer.from_dense(np.asarray(k, float).T) for k in kernels_in_out])


def _glorot_mlp(widths, rng, density=1.0):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        lim = np.sqrt(6.0 / (a + b))
        w = rng.uniform(-lim, lim, (b, a)) * (rng.random((b, a)) < density)
        layers.append(Layer.from_dense(w))
    return LayeredNetwork(layers)


def _planted(n_modules, per_layer, rng):
    """n_modules disjoint sub-networks through all layers, units shuffled inside each layer."""
    widths = [n_modules * p for p in per_layer]
    truth = [np.repeat(np.arange(n_modules), p) for p in per_layer]
    perms = [rng.permutation(w) for w in widths]
    layers = []
    for l in range(len(widths) - 1):
        same = truth[l + 1][:, None] == truth[l][None, :]
        w = same * rng.uniform(0.5, 1.5, same.shape) * rng.choice([-1, 1], same.shape)
        layers.append(Layer.from_dense(w[np.argsort(perms[l + 1])][:, np.argsort(perms[l])]))
    labels = np.concatenate([t[np.argsort(p)] for t, p in zip(truth, perms)])
    return LayeredNetwork(layers), labels


def test_ncut_toy_values_from_the_spec():
    g = build_unit_graph(_net_from_kernels([[12, -1.3], [0, 7.4]], [[-8.9, 0.15], [0.23, -5.7]]))
    assert ncut(g, [0, 1, 0, 1, 0, 1]) == pytest.approx(0.0989, abs=1e-3)
    w1 = [[5.4, 0.03, 0, 0], [0, 0, -0.4, 5.5], [-12, 0, 4.8, -0.07], [0, 6.3, 0.001, 7]]
    w2 = [[-13.3, -0.4, 6, 0.1], [0.7, -8, 0, -5.8], [7.4, 0.3, -15, 0], [0, 0, 0, -12.3]]
    g = build_unit_graph(_net_from_kernels(w1, w2))
    assert ncut(g, [1, 0] * 6) == pytest.approx(0.0372, abs=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_ncut_equals_networkx_normalized_cut_size(seed):
    rng = np.random.default_rng(seed)
    g = build_unit_graph(_glorot_mlp([9, 7, 6, 3], rng, density=0.6))
    labels = rng.integers(0, 2, g.n_units)
    G = nx.Graph()
    G.add_nodes_from(range(g.n_units))
    G.add_weighted_edges_from(zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist()))
    S = set(np.flatnonzero(labels == 0).tolist())
    want = nx.normalized_cut_size(G, S, set(G) - S, weight="weight")
    assert ncut(g, labels) == pytest.approx(want, rel=1e-7)
    assert ncut(g, Partition(labels)) == pytest.approx(want, rel=1e-7)


def test_ncut_leaves_out_units_labelled_minus_one_and_checks_the_length():
    g = build_unit_graph(_net_from_kernels([[1.0, 2.0], [3.0, 4.0]]))
    # without unit 3 the graph is the star 0-2, 1-2 in one module: nothing is cut
    assert ncut(g, [0, 0, 0, -1]) == 0.0
    with pytest.raises(ValueError, match="4 integer labels"):
        ncut(g, [0, 1])


def test_planted_twelve_subnetworks_are_recovered_exactly_with_zero_ncut():
    rng = np.random.default_rng(3)
    net, truth = _planted(12, [4, 3, 3, 2], rng)
    p = detect(build_unit_graph(net), method="spectral", k=12, seed=5)
    assert p.n_modules == 12 and p.removed.size == 0
    assert np.array_equal(p.labels, canonical_labels(truth))
    assert p.stats["ncut"] == pytest.approx(0.0, abs=1e-9)
    assert p.method == "spectral" and p.seed == 5 and p.stats["k"] == 12


def test_same_seed_same_labels_and_isolated_units_get_minus_one():
    rng = np.random.default_rng(1)
    net = _glorot_mlp([30, 20, 20, 5], rng, density=0.3)
    w0 = net.layers[0].dense()
    w0[:, 0] = 0.0                                        # input 0 loses every edge
    net = LayeredNetwork([Layer.from_dense(w0)] + list(net.layers[1:]))
    g = build_unit_graph(net)
    a, b = spectral(g, k=4, seed=7), spectral(g, k=4, seed=7)
    assert np.array_equal(a.labels, b.labels) and a.stats == b.stats
    assert a.labels[0] == -1 and a.removed.tolist() == [0] and a.stats["n_removed"] == 1
    assert a.n_modules == 4


def test_zero_valued_edges_do_not_count_as_degree():
    w = np.array([[0.0, 1.0], [0.0, 2.0]])
    net = LayeredNetwork([Layer.from_dense(w, mask=np.ones((2, 2), bool))])  # input 0: two 0.0 edges
    p = spectral(build_unit_graph(net), k=1, seed=0)
    assert p.labels.tolist() == [-1, 0, 0, 0]


def test_solvers_agree_on_a_pruned_net():
    g, _ = _clean(build_unit_graph(_glorot_mlp([60, 40, 40, 10], np.random.default_rng(2), density=0.2)))
    embs = {s: spectral_embedding(g, 6, solver=s, seed=0) for s in ("bipartite", "dense", "arpack")}
    embs["sparse"] = spectral_embedding(g, 6, solver="bipartite", seed=0, dense_limit=10)   # svds of the block
    assert embs["bipartite"][2] == "bipartite" == embs["sparse"][2] and embs["dense"][2] == "dense"
    for s in ("dense", "arpack", "sparse"):
        np.testing.assert_allclose(embs[s][1], embs["bipartite"][1], atol=1e-9)
        np.testing.assert_allclose(np.abs(embs[s][0]), np.abs(embs["bipartite"][0]), atol=1e-7)
    assert embs["bipartite"][1][0] == pytest.approx(0.0, abs=1e-12)     # the trivial eigenvector is kept


def test_kmeans_matches_sklearn_inertia_on_blobs():
    sklearn_cluster = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.3, (40, 3)) for c in rng.normal(0, 3, (5, 3))])
    labels, inertia = kmeans(x, 5, n_init=10, seed=1)
    ref = sklearn_cluster.KMeans(5, n_init=10, random_state=0).fit(x)
    assert inertia == pytest.approx(ref.inertia_, rel=1e-9)
    assert len(set(zip(labels.tolist(), ref.labels_.tolist()))) == 5      # same partition up to relabelling


def test_bad_input_gives_clear_errors():
    empty = UnitGraph(*(np.array([], dtype=np.int64),) * 4, np.array([]), (0,))
    with pytest.raises(ValueError, match="an empty graph"):
        spectral(empty, k=2)
    no_edges = build_unit_graph(LayeredNetwork([Layer.from_dense(np.zeros((3, 4)))]))
    with pytest.raises(ValueError, match="at least one edge with .w. > 0, found none among 7 units"):
        spectral(no_edges, k=2)
    g = build_unit_graph(_net_from_kernels([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(ValueError, match=r"k: expected an integer from 1 to 4 .*found 5"):
        spectral(g, k=5)
    with pytest.raises(ValueError, match="unknown solver 'qr'; choose one of arpack, auto, bipartite, dense"):
        spectral(g, k=2, solver="qr")


def test_random_init_mlp_ncut_at_k12_matches_the_papers():
    """§10 B.6 / issue 5 and 7 acceptance: 10.30 ± 0.05 (published 10.295 ± 0.032 over 100 nets)."""
    net = _glorot_mlp([784, 256, 256, 256, 256, 10], np.random.default_rng(0))
    p = spectral(build_unit_graph(net), k=12, n_init=25, seed=0)
    assert p.n_modules == 12 and p.removed.size == 0
    assert 10.25 <= p.stats["ncut"] <= 10.35
