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

On a DAG view (docs/methods.md, "On DAGs") a layer is a group depth: reach features follow
skip edges and leave out merge (Add, gate) units as targets, the units of one depth are
clustered together whatever their group, every output is its own cluster, and a cluster's
incoming edges are counted from every earlier layer when it merges. On a chain all of this is
the spec's procedure, bit for bit.

What it cannot do: weights are ignored (only the mask counts); a module absorbs at most one
cluster per hidden layer, so a module split inside a layer stays split; modules must be
feed-forward chains from the inputs upwards (no module starts above a layer without a cluster
below it that feeds it more than θ); it needs heavily pruned networks (a dense net is one module);
the coupled view of a DAG (not layered) is refused.

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
from modgraph.detect._paths import layer_products
from modgraph.graph import UnitGraph
from modgraph.partition import Partition

__all__ = ["sculpting", "PRESETS", "cosine_distances", "cluster_tree", "agglo", "qd_sweep",
           "clusterability_test", "cluster_layer", "merge_clusters"]

#: preset name -> (theta, mm) of spec §5.5
PRESETS = {"boolean": (0.9, 0.2), "mnist": (0.6, 0.3)}


def reach_features(g: UnitGraph, l: int) -> np.ndarray:
    """Boolean (units of layer l, units of layers l+1..last): which later units each one reaches.

    Columns are the units of layer l+1, then l+2, … (unit order within a layer). On a DAG view
    the paths run through skip edges too (:func:`~modgraph.detect._paths.layer_products`).
    """
    n = g.units_in_layer(l).size
    start = sp.identity(n, format="csr", dtype=np.float64)
    block = lambda k, m: g.layer_block(k, weighted=False, to=m).T.tocsr()   # noqa: E731  (units of k, of m)
    got = dict(layer_products(g, l, start, block, lambda a: a.astype(bool).astype(np.float64)))
    blocks = [got.get(m, sp.csr_matrix((n, g.units_in_layer(m).size))) for m in range(l + 1, g.n_layers)]
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
    """Join per-layer clusters into modules bottom-up (spec §5.4); returns module per unit.

    ``clusters`` numbers the clusters within each layer (0..). For the clusters ``d`` of layer
    ``i``, ``C[c, d]`` counts the edges from the units of module ``c`` into ``d``: on a chain they
    all start in layer ``i - 1`` (the spec's rule); on a DAG view they may start in any earlier
    layer (skip edges), so a cluster joins a module it is fed by through a skip edge as well.
    ``R[c, d]`` is the share of ``c``'s edges into layer ``i`` that reach ``d``, ``K[c, d]`` the
    share of ``d``'s incoming edges that come from ``c``; ``d`` joins the ``c`` with the largest
    ``K > θ`` that also has ``R > θ`` (an output's cluster needs only ``K``), else it starts a
    new module.
    """
    module = np.full(g.n_units, -1, dtype=np.int64)
    is_out = np.zeros(g.n_units, bool)
    is_out[g.output_units()] = True
    units0 = g.units_in_layer(0)
    module[units0] = clusters[units0]
    n_mod = int(clusters[units0].max()) + 1
    for i in range(1, g.n_layers):
        here = g.units_in_layer(i)
        if here.size == 0:
            continue
        feed = g.layer[g.src] < i if g.is_dag else g.layer[g.src] == i - 1
        feed &= g.layer[g.dst] == i
        mods_below, clu = np.unique(module[g.src[feed]], return_inverse=True)   # modules feeding layer i
        pos = np.full(g.n_units, -1)
        pos[here] = np.arange(here.size)
        d_here = clusters[here]
        n_clu = int(d_here.max()) + 1
        c = np.zeros((mods_below.size, n_clu))                                  # C[c, d]
        np.add.at(c, (clu.ravel(), d_here[pos[g.dst[feed]]]), 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.nan_to_num(c / c.sum(axis=1, keepdims=True))
            kk = np.nan_to_num(c / c.sum(axis=0, keepdims=True))
        out_cluster = np.zeros(n_clu, bool)
        out_cluster[d_here[is_out[here]]] = True
        ok = (kk > theta) & ((r > theta) | out_cluster)
        for d in range(n_clu):
            cands = np.flatnonzero(ok[:, d])
            if cands.size:
                target = mods_below[cands[np.argmax(kk[cands, d])]]
            else:
                target, n_mod = n_mod, n_mod + 1
            module[here[d_here == d]] = target
    return module


def _targets(g: UnitGraph) -> np.ndarray:
    """Per unit, whether it is a reach target: every unit of a chain; on a DAG view every unit but
    those of merge groups (an Add or gate unit only passes its inputs on, so what it reaches is
    what its consumers reach; as a target it would set apart the units that feed it one to one)."""
    if g.group is None:
        return np.ones(g.n_units, bool)
    merge = np.array([k == "merge" for k in g.group_kinds] or [False])
    return ~merge[g.group]


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
        graph.require("sculpting")                             # layers: a chain's, or a DAG's group depths
    work = prepare(graph, condense=True)
    clusters = np.zeros(work.n_units, dtype=np.int64)
    is_out = np.zeros(work.n_units, bool)
    is_out[work.output_units()] = True
    later = np.argsort(work.layer, kind="stable")           # the feature columns: units by layer, then number
    targets = _targets(work)[later]
    info = []
    for l in range(work.n_layers):
        units = work.units_in_layer(l)
        inner = units[~is_out[units]]                          # every output is its own cluster
        n_clusters = 0
        if inner.size:
            feats = reach_features(work, l)[~is_out[units]][:, targets[work.layer[later] > l]]
            labels, row = cluster_layer(feats, feats.shape[1], mm)
            clusters[inner] = labels
            n_clusters = int(labels.max()) + 1
            info.append({"layer": l, **row})
        outs = units[is_out[units]]
        clusters[outs] = n_clusters + np.arange(outs.size)
    modules = merge_clusters(work, clusters, theta)
    stats = {"theta": theta, "mm": mm, "layers": info, "n_units_used": work.n_units}
    return Partition(spread(graph, work, modules), method="sculpting", seed=seed, stats=stats)
