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


#: a weighted path 0-1-2-3-4-5 on which igraph 1.0's community_leiden(n_iterations=-1) never
#: returns with the RNG of leiden(seed=1)'s first run, random.Random("1-0") (found by a search
#: over random weights; the block graph of one layer per block is such a path)
HANGING_PATH = [1.8215445235810408, 1.4094377000402338, 0.7806649478388464, 0.14308002437767328,
                0.28939811550298494]


def _all_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _all_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


def test_leiden_returns_on_the_weighted_path_where_igraphs_until_stable_mode_hangs():
    """Run in a subprocess with a time limit: before issue 15 leiden() called n_iterations=-1
    and this never returned (modularity, sbm and nested-sbm all go through leiden())."""
    import json
    import subprocess
    import sys

    code = ("import json; from modgraph.detect.modularity import leiden; "
            f"l, q = leiden(6, [0, 1, 2, 3, 4], [1, 2, 3, 4, 5], {HANGING_PATH!r}, seed=1); "
            "print(json.dumps([l.tolist(), q]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    labels, q = json.loads(done.stdout)
    G = nx.Graph()
    G.add_weighted_edges_from((i, i + 1, w) for i, w in enumerate(HANGING_PATH))
    best = max(nx.community.modularity(G, p, weight="weight") for p in _all_partitions(list(range(6))))
    communities = [{v for v in range(6) if labels[v] == c} for c in set(labels)]
    assert q == pytest.approx(nx.community.modularity(G, communities, weight="weight"), abs=1e-12)
    assert q == pytest.approx(best, abs=1e-12)                 # the optimum over all 203 partitions


def test_leiden_pass_cap_is_checked():
    with pytest.raises(ValueError, match="max_passes must be >= 1, got 0"):
        leiden(2, [0], [1], seed=0, max_passes=0)


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
