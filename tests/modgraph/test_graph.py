import numpy as np
import pytest

from modgraph.graph import build_unit_graph, condense, drop_isolated
from modgraph.network import Layer, LayeredNetwork
from modgraph.testing import random_network


def _net(masks):
    return LayeredNetwork([Layer.from_dense(np.where(m, 0.5, 0.0), mask=np.array(m, bool)) for m in masks])


def test_unit_graph_edges_follow_the_weights():
    net = random_network([5, 7, 3], density=0.4, seed=4)
    g = build_unit_graph(net)
    assert g.n_units == 15 and g.n_edges == sum(l.n_edges for l in net.layers)
    assert np.all(g.layer[g.dst] == g.layer[g.src] + 1)
    for l, layer in enumerate(net.layers):
        np.testing.assert_array_equal(g.layer_block(l).toarray(), np.abs(layer.dense()))
        np.testing.assert_array_equal(g.layer_block(l, weighted=False).toarray(), layer.mask)
    a = g.adjacency()
    assert (a != a.T).nnz == 0


def test_condense_removes_exactly_the_dead_units():
    # inputs x0..x3, hidden A (5), hidden B (4), outputs (2)
    m1 = np.zeros((5, 4), bool)
    m1[0, [0, 1]] = True     # h1_0 live
    m1[1, 2] = True          # h1_1: dead end (no out-edges)
    m1[3, 3] = True          # h1_3 -> h2_3 -> nothing : dead chain
    # h1_2 and h1_4 get no inputs; h1_4 feeds h2_1 -> h2_1 has no path from an input
    m2 = np.zeros((4, 5), bool)
    m2[0, 0] = True          # h2_0 live
    m2[1, 4] = True          # h2_1 fed only by the input-less h1_4
    m2[3, 3] = True          # dead chain continues
    m3 = np.zeros((2, 4), bool)
    m3[0, 0] = True
    m3[1, 1] = True          # output y1 fed only by the dead h2_1; outputs are never dropped
    g = condense(build_unit_graph(_net([m1, m2, m3])))
    kept = sorted(zip(g.layer.tolist(), g.index.tolist()))
    assert kept == [(0, 0), (0, 1), (1, 0), (2, 0), (3, 0), (3, 1)]
    # edges: x0->h1_0, x1->h1_0, h1_0->h2_0, h2_0->y0
    assert g.n_edges == 4
    assert sorted(zip(g.layer[g.src].tolist(), g.index[g.src].tolist(),
                      g.index[g.dst].tolist())) == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (2, 0, 0)]
    full = g.to_full_labels(np.arange(g.n_units))
    assert (full >= 0).sum() == 6 and full.size == 15


def test_condense_is_a_fixed_point_of_degree_pruning():
    rng = np.random.default_rng(0)
    for seed in range(20):
        net = random_network([6, 10, 10, 10, 4], density=0.08, seed=seed)
        g = condense(build_unit_graph(net))
        d_in, d_out = g.degrees()
        hidden = (g.layer > 0) & (g.layer < g.n_layers - 1)
        assert np.all(d_in[hidden] > 0) and np.all(d_out[hidden] > 0)
        assert np.all(d_out[g.layer == 0] > 0)
        assert np.sum(g.layer == g.n_layers - 1) == 4
        assert condense(g).n_units == g.n_units


def test_drop_isolated_keeps_components_that_touch_one_side_only():
    m1 = np.array([[1, 0], [0, 0]], bool)
    m2 = np.array([[0, 0], [0, 0]], bool)
    g = drop_isolated(build_unit_graph(_net([m1, m2])))
    assert sorted(zip(g.layer.tolist(), g.index.tolist())) == [(0, 0), (1, 0)]


def test_subgraph_map_back():
    g = build_unit_graph(random_network([3, 4, 2], density=1.0))
    sub = g.subgraph(g.layer != 1)
    assert sub.n_edges == 0 and sub.original_id.tolist() == [0, 1, 2, 7, 8]
