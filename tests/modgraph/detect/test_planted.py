"""Planted structure: disjoint sub-MLPs and layered planted-partition graphs."""
import numpy as np
import pytest

from modgraph.detect import DETECTORS, _gt, detect
from modgraph.detect.sbm import layer_component_label
from modgraph.graph import build_unit_graph
from modgraph.metrics import nmi
from modgraph.planted import disjoint_mlps, planted_layered_graph

METHODS = sorted(DETECTORS)


def _options(method, n_modules):
    return {"k": n_modules} if method == "spectral" else {}


@pytest.mark.parametrize("n_modules", [2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_disjoint_sub_mlps_come_out_as_exact_modules(method, n_modules):
    net, truth = disjoint_mlps([6, 8, 8, 8, 4], n_modules=n_modules, seed=n_modules)
    g = build_unit_graph(net)
    p = detect(g, method=method, seed=0, **_options(method, n_modules))
    assert p.labels.tolist() == truth.tolist()          # canonical labels: equal up to nothing
    for members in p.modules():                          # each module spans every layer
        assert set(g.layer[members].tolist()) == set(range(g.n_layers))


@pytest.fixture(scope="module")
def planted_10_to_1():
    return planted_layered_graph(n_layers=4, layer_width=60, n_modules=3, ratio=10.0, mean_degree=20,
                                 weights="sign", seed=1)


@pytest.mark.parametrize("method", ["sbm", "nested-sbm", "modularity", "subfunctions"])
def test_planted_block_model_10_to_1_is_recovered(planted_10_to_1, method):
    g, truth = planted_10_to_1
    assert g.n_units >= 200
    p = detect(g, method=method, seed=0)
    score = nmi(truth, p.labels)
    print(f"{method} NMI at 10:1 = {score:.3f}")
    assert score >= 0.95
    assert p.n_modules == 3


def test_planted_block_model_at_2_to_1_is_reported():
    g, truth = planted_layered_graph(n_layers=4, layer_width=60, n_modules=3, ratio=2.0, mean_degree=24,
                                     weights="sign", seed=1)
    scores = {m: nmi(truth, detect(g, method=m, seed=0).labels) for m in ("sbm", "nested-sbm", "modularity")}
    print("NMI at 2:1 " + ", ".join(f"{m} {s:.3f}" for m, s in scores.items()))
    assert max(scores.values()) < 0.3       # at this size 2:1 is below what any method resolves


def _baselines(g, truth, seed):
    """NMI of the three layer-blind answers of the issue: flat SBM, nested SBM with the layer as
    pclabel (its level 1), graph-tool's ModularityState — with graph-tool's default multilevel
    sweeps (10), as the issue measured them."""
    G = _gt.to_graph_tool(g.n_units, g.src, g.dst, g.weight, layer=g.layer)
    flat = detect(g, method="sbm", layer_aware=False, seed=seed, multilevel_sweeps=10).labels
    levels, _ = _gt.fit_blockmodel(G, nested=True, seed=seed, pclabel=g.layer, n_restarts=1, multilevel_sweeps=10)
    level1 = levels[1][levels[0]]
    return nmi(truth, flat), nmi(truth, level1), nmi(truth, _gt.modularity_state(G, seed=seed))


def test_layer_aware_nested_sbm_beats_the_layer_blind_answers():
    """4 layers x 60 units, 3 modules, 4:1: flat SBM finds the layers, nested SBM with the layer as
    pclabel finds the layers again at level 1, ModularityState is noisy; layer-aware nested-sbm wins."""
    ours, flat, level1, modstate = [], [], [], []
    for seed in (1, 2, 3, 4):
        g, truth = planted_layered_graph(n_layers=4, layer_width=60, n_modules=3, ratio=4.0, mean_degree=24,
                                         seed=seed)
        ours.append(nmi(truth, detect(g, method="nested-sbm", seed=0).labels))
        if seed == 1:
            others = {m: nmi(truth, detect(g, method=m, seed=0, weighted=False).labels)
                      for m in ("sbm", "modularity")}
            print("NMI at 4:1 " + ", ".join(f"{m} {s:.3f}" for m, s in others.items())
                  + f", nested-sbm {ours[0]:.3f}")
        f, l1, ms = _baselines(g, truth, seed=0)
        flat.append(f), level1.append(l1), modstate.append(ms)
    print(f"4:1 NMI per graph: layer-aware nested-sbm {np.round(ours, 3)}, flat SBM {np.round(flat, 3)}, "
          f"nested+pclabel level 1 {np.round(level1, 3)}, ModularityState {np.round(modstate, 3)}")
    assert flat[0] < 0.01                                # the pitfall: exactly the layers
    assert max(level1) < 0.01
    assert min(ours) > max(flat) and min(ours) > max(level1)
    assert np.mean(ours) > np.mean(modstate) and min(ours) >= min(modstate)
    assert np.mean(ours) >= 0.95


def test_layer_constraint_keeps_disconnected_parts_apart():
    net, _ = disjoint_mlps([2, 3, 2], n_modules=2)
    g = build_unit_graph(net)
    lab = layer_component_label(g)
    assert len(set(zip(g.layer.tolist(), lab.tolist()))) == 6 == lab.max() + 1


@pytest.mark.parametrize("method", ["sbm", "nested-sbm"])
def test_weighted_block_models_recover_planted_modules(method):
    net, truth = disjoint_mlps([6, 8, 8, 8, 4], n_modules=3, seed=3)
    p = detect(build_unit_graph(net), method=method, seed=0, weighted=True)
    assert p.labels.tolist() == truth.tolist() and p.stats["weighted"] is True
    assert np.isfinite(p.stats["description_length"])
    with pytest.raises(ValueError, match="n_restarts must be >= 1, got 0"):
        detect(build_unit_graph(net), method=method, n_restarts=0)
    with pytest.raises(ValueError, match="multilevel_sweeps must be >= 1, got 0"):
        detect(build_unit_graph(net), method=method, multilevel_sweeps=0)
