"""The modularity baseline, the shared yardstick and the block-graph merge step."""
import random

import networkx as nx
import numpy as np
import pytest

from modgraph.detect import _gt, detect
from modgraph.detect._layered import block_graph
from modgraph.detect.modularity import leiden
from modgraph.graph import condense
from modgraph.planted import planted_layered_graph, random_layered_graph


def _nx(g):
    G = nx.Graph()
    G.add_nodes_from(range(g.n_units))
    G.add_weighted_edges_from(zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist()))
    return G


def test_reported_modularity_equals_networkx():
    g = condense(random_layered_graph(n_layers=4, layer_width=30, fan_in=4, seed=2))
    for weighted in (True, False):
        p = detect(g, method="modularity", seed=3, weighted=weighted)
        communities = [set(m.tolist()) for m in p.modules()]
        expected = nx.community.modularity(_nx(g), communities, weight="weight" if weighted else None)
        assert p.stats["modularity"] == pytest.approx(expected, abs=1e-10)
        assert p.stats["modularity"] > 0.3


def test_leiden_leaves_pythons_random_alone_and_restarts_keep_the_best():
    g = condense(random_layered_graph(n_layers=4, layer_width=30, fan_in=4, seed=2))
    random.seed(11)
    before = random.random()
    random.seed(11)
    labels, q = leiden(g.n_units, g.src, g.dst, g.weight, seed=0, n_restarts=4)
    assert random.random() == before
    singles = [leiden(g.n_units, g.src, g.dst, g.weight, seed=0, n_restarts=r)[1] for r in (1, 2, 3)]
    assert q >= max(singles) - 1e-12 and singles == sorted(singles)


def test_block_graph_modularity_equals_the_unit_partitions():
    """Modularity of a coarsening of blocks = modularity of the block graph (the merge step)."""
    g, truth = planted_layered_graph(n_layers=3, layer_width=20, n_modules=2, ratio=5.0, mean_degree=8, seed=4)
    blocks = g.layer * 2 + truth                         # the (layer, module) blocks
    n, s, d, total = block_graph(g.src, g.dst, blocks, g.weight)
    assert n == 6 and total.sum() == pytest.approx(g.weight.sum())
    coarse = np.array([0, 1, 0, 1, 0, 1])               # block -> module
    G = _gt.to_graph_tool(g.n_units, g.src, g.dst, g.weight)
    B = _gt.to_graph_tool(n, s, d, total)
    assert _gt.modularity(B, coarse) == pytest.approx(_gt.modularity(G, coarse[blocks]), abs=1e-12)
    layers = np.array([0, 0, 1, 1, 2, 2])               # a layer has no internal edge: never chosen
    assert _gt.modularity(B, layers) < 0 < _gt.modularity(B, coarse)


def test_resolution_splits_more_finely():
    g, _ = planted_layered_graph(n_layers=4, layer_width=40, n_modules=2, ratio=10.0, mean_degree=12, seed=0)
    coarse = detect(g, method="modularity", seed=0, resolution=0.2)
    fine = detect(g, method="modularity", seed=0, resolution=3.0)
    assert coarse.n_modules < fine.n_modules
