"""The detection entry point: determinism, result shape, bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest

from modgraph.detect import DETECTORS, _gt, detect
from modgraph.graph import UnitGraph, build_unit_graph, condense
from modgraph.metrics import nmi
from modgraph.network import Layer, LayeredNetwork
from modgraph.partition import Hierarchy, canonical_labels
from modgraph.planted import planted_layered_graph
from modgraph.testing import random_network

OURS = ["sbm", "nested-sbm", "modularity", "sculpting", "subfunctions"]


def _options(method):
    return {"k": 3} if method == "spectral" else {}


@pytest.fixture(scope="module")
def pruned():
    """A random pruned MLP of about 170 live units (the size where graph-tool 2.45 single calls
    were seen to be irreproducible), uncondensed: it has dead units."""
    return build_unit_graph(random_network([20, 60, 60, 30], density=0.15, seed=3))


@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_same_seed_gives_identical_labels_twice(pruned, method):
    a = detect(pruned, method=method, seed=4, **_options(method))
    b = detect(pruned, method=method, seed=4, **_options(method))
    assert np.array_equal(a.labels, b.labels)
    assert a.labels.shape == (pruned.n_units,)
    assert np.array_equal(a.labels, canonical_labels(a.labels))
    if method in OURS:        # units removed by condensation are labelled -1 and listed
        c = condense(pruned)
        assert a.removed.size == pruned.n_units - c.n_units > 0
        assert np.array_equal(a.labels >= 0, np.isin(pruned.original_id, c.original_id))


_CHILD = """
import json, sys
from modgraph.detect import detect
from modgraph.graph import build_unit_graph
from modgraph.testing import random_network
g = build_unit_graph(random_network([20, 60, 60, 30], density=0.15, seed=3))
out = {m: detect(g, method=m, seed=s, **o).labels.tolist()
       for m, s, o in [("sbm", 0, {}), ("nested-sbm", 7, {})]}
print(json.dumps(out))
"""


def test_block_models_are_reproducible_across_fresh_processes(pruned):
    runs = [json.loads(subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                                      check=True).stdout) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0]["sbm"] == detect(pruned, method="sbm", seed=0).labels.tolist()


def test_seed_zero_is_a_seed_not_the_clock(pruned):
    g = condense(pruned)
    G = _gt.to_graph_tool(g.n_units, g.src, g.dst, g.weight, layer=g.layer)
    fits = [_gt.fit_blockmodel(G, nested=False, seed=0, n_restarts=1) for _ in range(2)]
    assert np.array_equal(fits[0][0][0], fits[1][0][0]) and fits[0][1] == fits[1][1]
    assert len(set(_gt.restart_seeds(0, 5))) == 5 and min(_gt.restart_seeds(0, 5)) > 0


def test_bridge_graph_carries_weights_and_layers(pruned):
    G = _gt.to_graph_tool(pruned.n_units, pruned.src, pruned.dst, pruned.weight, layer=pruned.layer)
    assert G.num_vertices() == pruned.n_units and G.num_edges() == pruned.n_edges and not G.is_directed()
    assert np.array_equal(G.edge_properties["weight"].a, pruned.weight)
    assert np.array_equal(G.vertex_properties["layer"].a, pruned.layer)


def test_compact_levels_drops_empty_blocks_and_stops_at_one_block():
    bs = [np.array([4, 4, 1, 7]),                          # blocks 1, 4, 7 used of 0..8
          np.array([0, 2, 0, 0, 5, 0, 0, 2, 9]),           # used blocks map to 2, 5, 2
          np.array([0, 0, 3, 0, 0, 3, 1, 1, 1, 1]),         # 2 and 5 both to 3: one block, stop
          np.array([0, 0, 0, 0])]
    levels = _gt.compact_levels(bs)
    assert [l.tolist() for l in levels] == [[1, 1, 0, 2], [0, 1, 0], [0, 0]]


class _Entropies:
    """A stand-in for a graph-tool state: each sweep moves to the next entropy of a list."""

    def __init__(self, values):
        self.values, self.sweeps = list(values), 0

    def entropy(self):
        return self.values[self.sweeps]

    def multiflip_mcmc_sweep(self, *, beta, niter):
        assert beta == np.inf
        self.sweeps += 1


@pytest.mark.parametrize("values, sweeps, result", [
    ([10.0, 7.0, 7.0 - 1e-10, 1.0], 2, 7.0 - 1e-10),     # a fall of 1e-10 is rounding: stop there
    ([-200.0, -200.5, -200.5 - 2e-9, -300.0], 3, -300.0),  # a fall of 2e-9 is progress
    ([5.0, 4.0, float("nan"), 1.0], 2, "nan"),            # a non-finite entropy stops the loop
    ([3.0, 2.0, 1.0, 0.5, 0.25], 3, 0.5),                 # at most n_sweeps sweeps
])
def test_one_refinement_loop_stops_when_the_entropy_stops_falling(values, sweeps, result):
    """Block models and ModularityState share _gt._refine (issue 13: the 1e-12 copy is gone)."""
    state = _Entropies(values)
    got = _gt._refine(state, 3)
    assert state.sweeps == sweeps
    assert np.isnan(got) if result == "nan" else got == result


class _Levels(_Entropies):
    """The stand-in with block labels: after sweep i the level-0 blocks are ``[0] * i + [1] * (3 - i)``."""

    def get_bs(self):
        b = np.array([0] * self.sweeps + [1] * (3 - self.sweeps))
        return [b, np.zeros(2, dtype=np.int64)]

    def get_blocks(self):
        return type("Prop", (), {"a": self.get_bs()[0]})()


@pytest.mark.parametrize("values, sweeps, dl, level0", [
    ([5.0, 4.0, float("nan"), 1.0], 2, 4.0, [0, 1, 1]),   # the NaN sweep is undone: the state after sweep 1
    ([float("nan"), 3.0, 3.0], 1, 3.0, [0, 1, 1]),        # a NaN start that a sweep makes finite
    ([5.0, 4.0, 4.0], 2, 4.0, [0, 0, 1]),                  # no NaN: as _refine, the state after the last sweep
])
def test_block_model_refinement_keeps_the_last_finite_state(values, sweeps, dl, level0):
    state = _Levels(values)
    levels, got = _gt._refine_levels(state, 3, nested=True)
    assert state.sweeps == sweeps and got == dl and levels[0].tolist() == level0
    never = _gt._refine_levels(_Levels([float("nan")] * 4), 3, nested=False)
    assert never[0] is None and np.isnan(never[1])


def _tiny(masks):
    return build_unit_graph(LayeredNetwork([Layer.from_dense(m * 1.0, mask=m) for m in masks]))


TINY = {   # 1-hidden-layer nets like the sculpted [4,1,4] exemplars; each failed for nested-sbm before issue 15
    "[3,1,4] (x4 dead)": [np.array([[1, 1, 1, 0]], bool), np.ones((4, 1), bool)],
    "[4,2,4] complete": [np.ones((2, 4), bool), np.ones((4, 2), bool)],
    "[2,2,3] complete": [np.ones((2, 2), bool), np.ones((3, 2), bool)],
}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("method", ["nested-sbm", "sbm"])
def test_block_models_give_every_tiny_network_a_partition(name, method):
    """graph-tool 2.45's nested SBM with layer constraints goes NaN on these after a sweep; the
    last finite state is kept (and more restarts run while none is finite)."""
    g = _tiny(TINY[name])
    for seed in range(4):
        p = detect(g, method=method, seed=seed)
        alive = condense(g).original_id
        assert np.isfinite(p.stats["description_length"]) and (p.labels[alive] >= 0).all()
        assert p.n_modules == 1                            # one function: one module


def test_a_fit_that_never_turns_finite_names_what_was_fitted(monkeypatch):
    class Never:
        def entropy(self):
            return float("nan")

        def multiflip_mcmc_sweep(self, **_):
            pass

    monkeypatch.setattr(_gt.gt, "minimize_nested_blockmodel_dl", lambda g, **_: Never())
    g = _gt.to_graph_tool(3, [0, 1], [1, 2])
    with pytest.raises(_gt.ModgraphError, match=r"every one of 12 fits of the nested SBM \(unweighted\) and layer "
                                                 r"constraints on a graph of 3 vertices and 2 edges"):
        _gt.fit_blockmodel(g, nested=True, seed=0, pclabel=[0, 1, 2])


def test_nested_sbm_hierarchy_levels_partition_the_level_below():
    g, truth = planted_layered_graph(n_layers=3, layer_width=40, n_modules=2, ratio=10.0, mean_degree=16,
                                     weights="sign", seed=2)
    h = detect(g, method="nested-sbm", seed=1)
    assert isinstance(h, Hierarchy) and h.module_level == 1
    for l in range(1, len(h.levels)):
        assert h.levels[l].size == h.levels[l - 1].max() + 1
    blocks = h.project(0)
    for b in range(blocks.max() + 1):                    # level-0 blocks sit in one layer
        assert np.unique(g.layer[blocks == b]).size == 1
    assert h.project(len(h.levels) - 1).max() == 0       # the top is one block
    for l in range(2, len(h.levels)):                    # every level above the modules merges
        assert h.levels[l].max() < h.levels[l].size - 1
    assert nmi(truth, h.labels) > 0.9 and h.n_modules == 2
    assert np.isfinite(h.stats["description_length"]) and 0.3 < h.stats["modularity"] < 0.5


def test_sbm_reports_description_length_and_modularity(pruned):
    p = detect(pruned, method="sbm", seed=0, weighted=True)
    q = detect(pruned, method="modularity", seed=0)
    assert np.isfinite(p.stats["description_length"]) and p.stats["weighted"] is True
    assert q.stats["modularity"] > 0.3 and p.stats["n_blocks"] >= p.n_modules


def _graph(n_units_per_layer, src, dst):
    layer = np.repeat(np.arange(len(n_units_per_layer)), n_units_per_layer)
    index = np.concatenate([np.arange(n) for n in n_units_per_layer]) if layer.size else np.zeros(0, int)
    return UnitGraph(layer, index, np.asarray(src, int), np.asarray(dst, int), np.ones(len(src)),
                     tuple(n_units_per_layer))


@pytest.mark.parametrize("method", OURS)
def test_empty_graph_and_graph_without_edges_are_clear_errors(method):
    with pytest.raises(ValueError, match="the graph has no units: nothing to detect modules in"):
        detect(_graph([0, 0], [], []), method=method)
    net = LayeredNetwork([Layer.from_dense(np.zeros((3, 2)), mask=np.zeros((3, 2), bool))])
    with pytest.raises(ValueError, match="the graph has 5 units but no edges: nothing to detect modules in"):
        detect(build_unit_graph(net), method=method)
    dead = _graph([1, 1, 1], [0], [1])                   # the only edge leads nowhere
    with pytest.raises(ValueError, match="no edge is left after condensation"):
        detect(dead, method=method)


def test_unknown_method_lists_the_methods():
    with pytest.raises(ValueError, match="unknown method 'louvain'; choose one of modularity, nested-sbm, "
                                         "sbm, sculpting, spectral, subfunctions$"):
        detect(_graph([1, 1], [0], [1]), method="louvain")


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
@pytest.mark.parametrize("method", OURS)
def test_bad_seed_is_rejected(method, seed):
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        detect(_graph([1, 1], [0], [1]), method=method, seed=seed)
