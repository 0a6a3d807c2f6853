"""``sculpting``: Neural Sculpting's module detection (Patil, Michael & Dovrolis, NeurIPS 2023,
arXiv 2305.18402), exactly as in ``specs/neural-sculpting.md`` §5.

1. Condense the unweighted unit graph (dead units are labelled −1).
2. Describe each unit by its *reachability* vector: which units of the later layers it reaches
   along directed paths.
3. Cluster each non-output layer: average-linkage agglomerative clustering with cosine distance
   (one scipy dendrogram per layer, built as scikit-learn's ``AgglomerativeClustering`` builds
   it, from ``pdist`` cosine distances, so tied merges go in the same order; ``AGGLO(F, k)``
   undoes its last k−1 merges, never a height cut), k chosen by minimising the
   distance-modularity Q_D (rounded to 8 decimals as the authors do; ties to the larger k),
   overridden by the clusterability test (the authors' arithmetic) when Q_D is unconvincing.
   Every output is its own cluster.
4. Merge clusters bottom-up into modules: a cluster joins the module below that supplies more
   than θ of its incoming edges and sends it more than θ of its outgoing edges (outputs need only
   the first).

Parameters default to the Boolean tasks' θ = 0.9, mm = 0.2; ``preset="mnist"`` selects 0.6, 0.3.

What it cannot do: weights are ignored (only the mask counts); a module absorbs at most one
cluster per hidden layer, so a module split inside a layer stays split; modules must be
feed-forward chains from the inputs upwards (no module starts above a layer without a cluster
below it that feeds it more than θ); it needs heavily pruned networks (a dense net is one module).

Examples
--------
>>> from modgraph.planted import disjoint_mlps
>>> from modgraph.graph import build_unit_graph
>>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
>>> p = sculpting(build_unit_graph(net))
>>> p.labels.tolist() == truth.tolist(), p.n_modules
(True, 2)
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import linkage
from scipy.spatial.distance import pdist, squareform

from modgraph.detect._registry import register
from modgraph.detect._common import check_seed, prepare, spread
from modgraph.graph import UnitGraph
from modgraph.partition import Partition

__all__ = ["sculpting", "PRESETS", "cosine_distances", "cluster_tree", "agglo", "qd_sweep",
           "clusterability_test", "cluster_layer", "merge_clusters"]

#: preset name -> (theta, mm) of spec §5.5
PRESETS = {"boolean": (0.9, 0.2), "mnist": (0.6, 0.3)}


def reach_features(g: UnitGraph, l: int) -> np.ndarray:
    """Boolean (units of layer l, units of layers l+1..last): which later units each one reaches."""
    cur = sp.identity(g.units_in_layer(l).size, format="csr", dtype=np.float64)
    blocks = []
    for m in range(l, g.n_layers - 1):
        step = g.layer_block(m, weighted=False).T.tocsr()          # (units of m, units of m+1)
        cur = (cur @ step).astype(bool).astype(np.float64)
        blocks.append(cur)
    return sp.hstack(blocks).toarray() > 0


def cosine_distances(features: np.ndarray) -> np.ndarray:
    """Condensed cosine distances of the rows (``scipy.spatial.distance.pdist``, float64).

    These are exactly the distances scikit-learn's ``AgglomerativeClustering(metric="cosine",
    linkage="average")`` builds its tree from (it calls ``scipy.cluster.hierarchy.linkage(X,
    "average", metric="cosine")``, which calls ``pdist``), and those the authors' Q_D uses, so
    merges at near-ties happen in the same order. Identical rows can be 1e-16 apart, not 0.
    """
    return pdist(features.astype(np.float64), metric="cosine")


def cluster_tree(dist: np.ndarray) -> np.ndarray:
    """scipy linkage of condensed distances, average linkage: the tree of
    ``AgglomerativeClustering(metric="cosine", linkage="average")`` (same merges, same order)."""
    return linkage(dist, method="average")


def agglo(tree: np.ndarray, n: int, k: int) -> np.ndarray:
    """Labels after undoing the last ``k - 1`` merges of a scipy linkage ``tree`` over ``n`` rows."""
    members = {i: [i] for i in range(n)}
    for step, (a, b) in enumerate(tree[: n - k, :2].astype(int)):
        members[n + step] = members.pop(a) + members.pop(b)
    labels = np.empty(n, dtype=np.int64)
    for c, rows in enumerate(sorted(members.values(), key=min)):
        labels[rows] = c
    return labels


def qd_sweep(tree: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Q_D(F, AGGLO(F, k)) for every k = n..1 in one pass over the merges; entry k is Q_D at k.

    Q_D = Σ_c (e_c − a_c²) on the distance matrix divided by its total (spec §5.2).
    """
    n = dist.shape[0]
    d = dist / dist.sum()
    rows = d.sum(axis=1)
    members = {i: [i] for i in range(n)}
    e = dict.fromkeys(range(n), 0.0)
    a = {i: rows[i] for i in range(n)}
    qd = np.full(n + 1, np.nan)
    qd[n] = -float(np.sum(rows ** 2))
    for step, (x, y) in enumerate(tree[:, :2].astype(int)):
        mx, my = members.pop(x), members.pop(y)
        cross = d[np.ix_(mx, my)].sum()
        ex, ey, ax, ay = e.pop(x), e.pop(y), a.pop(x), a.pop(y)
        new = n + step
        members[new], e[new], a[new] = mx + my, ex + ey + 2 * cross, ax + ay
        qd[n - step - 1] = qd[n - step] + 2 * cross - 2 * ax * ay
    return qd


def _overlap_z(ti: np.ndarray, tj: np.ndarray, n_targets: int):
    """k_i, k_j, k_ij, expected overlap e and σ, in the authors' arithmetic: x = k_i·k_j/N²,
    e = N·x (not k_i·k_j/N: at an exact tie 14.000000000000002 vs 14.0 flips the test)."""
    ki, kj, kij = int(ti.sum()), int(tj.sum()), int((ti & tj).sum())
    x = ki * kj / n_targets ** 2
    e = n_targets * x
    sigma = np.sqrt(n_targets * x * (1.0 - x))
    return ki, kj, kij, e, sigma


def _z(num: float, sigma: float) -> float:
    """The z score; with σ = 0 the authors keep the plain difference."""
    return num if sigma == 0 else num / sigma


def clusterability_test(features: np.ndarray, tree: np.ndarray, n_targets: int):
    """The fallback test of spec §5.3: ``n`` (all separate), ``1`` (all together) or ``None``."""
    n = features.shape[0]
    fired = []
    a, b = tree[0, :2].astype(int)                      # the two-member cluster of AGGLO(F, n-1)
    ki, kj, kij, e, sigma = _overlap_z(features[a], features[b], n_targets)
    if (kij < max(ki, kj) and kij <= e) or kij == 0:
        fired.append((_z(e - kij, sigma), n))
    halves = agglo(tree, n, 2)
    ti, tj = features[halves == 0].any(axis=0), features[halves == 1].any(axis=0)
    ki, kj, kij, e, sigma = _overlap_z(ti, tj, n_targets)
    if (kij >= 1 and kij >= e) or kij >= max(ki, kj):
        fired.append((_z(kij - e, sigma), 1))
    if not fired:
        return None
    # a tie goes to "all together": the authors' detection code keeps the single cluster when
    # its z is >= the separate one's (Neural-Sculpting, detection_pipeline/utils/clusterability.py)
    return max(fired, key=lambda zk: (zk[0], zk[1] == 1))[1]


def cluster_layer(features: np.ndarray, n_targets: int, mm: float) -> tuple[np.ndarray, dict]:
    """Cluster one layer's reachability rows (spec §5.4); returns labels and what decided k."""
    n = features.shape[0]
    if n == 1:
        return np.zeros(1, dtype=np.int64), {"n": 1, "k": 1, "by": "single unit"}
    if (features == features[0]).all():
        return np.zeros(n, dtype=np.int64), {"n": n, "k": 1, "by": "identical features"}
    cond = cosine_distances(features)
    tree = cluster_tree(cond)
    dist = squareform(cond)
    qmin = None
    k = 2
    if n > 2:
        # k = 2 .. n-1; rounded to 8 decimals as the authors' modularity_metric rounds it: their
        # k choice compares rounded values, equal ones are ties and go to the larger k
        qd = np.round(qd_sweep(tree, dist)[2:n], 8)
        qmin = float(np.min(qd))
        k = 2 + int(np.flatnonzero(qd == qmin)[-1])
    test = clusterability_test(features, tree, n_targets)
    by = "qd"
    if (k == 2 or k == n - 1 or qmin is None or qmin > -mm) and test is not None:
        k, by = test, "test"
    labels = np.zeros(n, dtype=np.int64) if k == 1 else agglo(tree, n, k)
    return labels, {"n": n, "k": int(k), "by": by, "qd_min": qmin, "test": test}


def merge_clusters(g: UnitGraph, clusters: np.ndarray, theta: float) -> np.ndarray:
    """Join per-layer clusters into modules bottom-up (spec §5.4); returns module per unit."""
    last = g.n_layers - 1
    module = np.full(g.n_units, -1, dtype=np.int64)
    units0 = g.units_in_layer(0)
    module[units0] = clusters[units0]
    n_mod = int(clusters[units0].max()) + 1
    for i in range(1, last + 1):
        below, here = g.units_in_layer(i - 1), g.units_in_layer(i)
        mods_below, clu = np.unique(module[below], return_inverse=True)
        count = (g.layer_block(i - 1, weighted=False).T.tocsr()).toarray()   # (units i-1, units i)
        onehot_b = np.eye(mods_below.size)[clu]                                # (units i-1, modules)
        d_here = clusters[here]
        onehot_h = np.eye(int(d_here.max()) + 1)[d_here]                       # (units i, clusters)
        c = onehot_b.T @ count @ onehot_h                                      # C[c, d]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.nan_to_num(c / c.sum(axis=1, keepdims=True))
            kk = np.nan_to_num(c / c.sum(axis=0, keepdims=True))
        ok = (kk > theta) & ((r > theta) | (i == last))
        for d in range(c.shape[1]):
            cands = np.flatnonzero(ok[:, d])
            if cands.size:
                target = mods_below[cands[np.argmax(kk[cands, d])]]
            else:
                target, n_mod = n_mod, n_mod + 1
            module[here[d_here == d]] = target
    return module


@register("sculpting")
def sculpting(graph: UnitGraph, *, seed: int = 1, preset: str = "boolean", theta: float | None = None,
              mm: float | None = None) -> Partition:
    """Neural Sculpting's modules of a pruned network's unit graph (spec §5; deterministic).

    Parameters
    ----------
    graph : UnitGraph
        Possibly uncondensed; weights are ignored. Dead units are labelled −1.
    seed : int
        Recorded only: the method has no randomness.
    preset : {"boolean", "mnist"}
        (θ, mm) = (0.9, 0.2) or (0.6, 0.3).
    theta, mm : float, optional
        Override the preset's merge threshold θ (0.5 ≤ θ < 1) and Q_D threshold mm.

    Returns
    -------
    Partition
        ``stats["layers"]``: per non-output layer, its size ``n``, the chosen ``k`` and what
        decided it (``"qd"``, ``"test"``, ...), with ``qd_min`` and the test's answer.
    """
    seed = check_seed(seed)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    theta = PRESETS[preset][0] if theta is None else float(theta)
    mm = PRESETS[preset][1] if mm is None else float(mm)
    if not 0.5 <= theta < 1:
        raise ValueError(f"theta must be in [0.5, 1), got {theta}")
    if isinstance(graph, UnitGraph):
        graph.require("sculpting", consecutive=True)          # clusters merge into the layer just below
    work = prepare(graph, condense=True)
    clusters = np.zeros(work.n_units, dtype=np.int64)
    info = []
    for l in range(work.n_layers - 1):
        units = work.units_in_layer(l)
        feats = reach_features(work, l)
        labels, row = cluster_layer(feats, feats.shape[1], mm)
        clusters[units] = labels
        info.append({"layer": l, **row})
    out = work.units_in_layer(work.n_layers - 1)
    clusters[out] = np.arange(out.size)
    modules = merge_clusters(work, clusters, theta)
    stats = {"theta": theta, "mm": mm, "layers": info, "n_units_used": work.n_units}
    return Partition(spread(graph, work, modules), method="sculpting", seed=seed, stats=stats)
