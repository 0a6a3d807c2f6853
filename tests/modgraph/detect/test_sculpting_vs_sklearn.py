"""``sculpting``'s per-layer clustering against a straightforward scikit-learn implementation of the
authors' procedure (spec §5.2-5.4), on random sparse masks (issue 15).

The reference fits ``AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average")``
afresh for every k it needs, as the authors' ``detection_pipeline/cluster.py`` does, computes Q_D
from scipy's ``pdist`` cosine distances rounded to 8 decimals (their ``modularity_metric``),
takes the last minimum (ties to the larger k), and runs the clusterability test with their
arithmetic (x = k_i k_j / N², e = N x, σ = √(N x (1 − x)), z = difference when σ = 0, a tie of z
to "all together"). One documented departure is shared by both sides: a layer whose rows are all
identical is one cluster (the authors' Q_D divides float noise of 1e-16 by its own sum there).

``benchmarks/sculpting_vs_sklearn.py`` runs the same comparison on more masks.
"""
import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from scipy.spatial.distance import pdist, squareform

from modgraph.detect.sculpting import cluster_layer, cluster_tree, clusterability_test, cosine_distances
from modgraph.graph import build_unit_graph, condense
from modgraph.network import Layer, LayeredNetwork
from modgraph.partition import canonical_labels

MM = 0.2
# scipy warns when a square 0/1 feature matrix looks like a distance matrix; it is still read as rows
pytestmark = pytest.mark.filterwarnings("ignore:.*looks suspiciously like an uncondensed distance matrix")


def sk_agglo(feats, k):
    """The authors' call: a fresh fit for this k."""
    return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit(feats).labels_


def sk_tree(feats):
    """scikit-learn's full tree (``children_``): merge i joins these two nodes into node n + i."""
    return AgglomerativeClustering(n_clusters=None, distance_threshold=0.0, compute_full_tree=True,
                                   metric="cosine", linkage="average").fit(feats).children_


def cut(children, n, k):
    """The k clusters scikit-learn's n_clusters=k fit returns: those after the first n - k merges."""
    members = {i: [i] for i in range(n)}
    for step, (a, b) in enumerate(children[:n - k]):
        members[n + step] = members.pop(a) + members.pop(b)
    labels = np.empty(n, dtype=np.int64)
    for c, rows in enumerate(members.values()):
        labels[rows] = c
    return labels


def sk_qd(d, labels):
    """Spec §5.2 on the normalised distance matrix ``d``, rounded to 8 decimals as the authors do."""
    p = np.eye(labels.max() + 1)[labels]
    return round(float(np.trace(p.T @ d @ p) - np.sum((p.T @ d.sum(axis=1)) ** 2)), 8)


def _stats(a, b, n_targets):
    ki, kj, kij = int(a.sum()), int(b.sum()), int((a & b).sum())
    x = ki * kj / n_targets ** 2
    e, s = n_targets * x, np.sqrt(n_targets * x * (1.0 - x))
    return ki, kj, kij, e, s


def sk_test(feats, n_targets, agglo=sk_agglo):
    """The clusterability test: n, 1 or None."""
    n = feats.shape[0]
    lab = agglo(feats, n - 1)
    i, j = np.flatnonzero(lab == np.bincount(lab).argmax())
    ki, kj, kij, e, s = _stats(feats[i], feats[j], n_targets)
    sep = ((e - kij) / s if s else e - kij) if ((kij < max(ki, kj) and kij <= e) or kij < 1) else None
    lab = agglo(feats, 2)
    ki, kj, kij, e, s = _stats(feats[lab == 0].any(axis=0), feats[lab == 1].any(axis=0), n_targets)
    one = ((kij - e) / s if s else kij - e) if ((kij >= 1 and kij >= e) or kij >= max(ki, kj)) else None
    if sep is not None and one is not None:
        return 1 if one >= sep else n
    return n if sep is not None else (1 if one is not None else None)


def sk_cluster_layer(feats, n_targets, mm=MM, *, one_tree=False):
    """The authors' per-layer clustering. ``one_tree``: cut scikit-learn's full tree for each k
    instead of a fresh fit per k (the same labels, tested; several times faster)."""
    n = feats.shape[0]
    if n == 1 or (feats == feats[0]).all():
        return np.zeros(n, dtype=np.int64)
    if one_tree:
        children = sk_tree(feats)

        def fit(f, k):
            return cut(children, n, k)
    else:
        fit = sk_agglo
    test = sk_test(feats, n_targets, fit)
    k, qmin = 2, None
    if n > 2:
        d = squareform(pdist(feats.astype(float), metric="cosine"))   # as the authors' Q_D
        d = d / d.sum()
        losses = [sk_qd(d, fit(feats, k)) for k in range(2, n)]
        qmin = min(losses)
        k = max(k for k, q in zip(range(2, n), losses) if q == qmin)
    if (k == 2 or k == n - 1 or qmin is None or qmin > -mm) and test is not None:
        k = test
    return np.zeros(n, dtype=np.int64) if k == 1 else fit(feats, k)


def random_masks(rng):
    """A random sparse MLP mask: 3-8 inputs, 1-3 hidden layers of 3-8 units, 2-6 outputs."""
    widths = [int(rng.integers(3, 9))] + [int(rng.integers(3, 9))] * int(rng.integers(1, 4)) \
        + [int(rng.integers(2, 7))]
    density = rng.uniform(0.2, 0.5)
    return [rng.random((widths[i + 1], widths[i])) < density for i in range(len(widths) - 1)]


def layer_features(masks):
    """Spec §5.1 by hand on dense masks: condense to a fixed point, then for every non-output
    layer with >= 2 units its reachability rows over all later units (the features)."""
    masks = [m.copy() for m in masks]                    # masks[i]: (units of i+1, units of i)
    alive = [np.ones(masks[0].shape[1], bool)] + [np.ones(m.shape[0], bool) for m in masks]
    while True:
        before = [a.copy() for a in alive]
        for i, m in enumerate(masks):
            m &= alive[i + 1][:, None] & alive[i][None, :]
        alive[0] &= masks[0].any(axis=0)
        for i in range(1, len(masks)):
            alive[i] &= masks[i - 1].any(axis=1) & masks[i].any(axis=0)
        if all((a == b).all() for a, b in zip(alive, before)):
            break
    masks = [m[alive[i + 1]][:, alive[i]] for i, m in enumerate(masks)]
    out = []
    for l in range(len(masks)):
        cur, blocks = np.eye(masks[l].shape[1], dtype=bool), []
        for m in masks[l:]:
            cur = (cur.astype(np.int64) @ m.T.astype(np.int64)) > 0
            blocks.append(cur)
        feats = np.hstack(blocks)
        if feats.shape[0] >= 2:
            out.append(feats)
    return out


def compare(n_masks, seed):
    """(layers compared, layers that differ, first differing features) over n_masks random masks."""
    rng = np.random.default_rng(seed)
    layers, diffs, first = 0, 0, None
    for _ in range(n_masks):
        for feats in layer_features(random_masks(rng)):
            ours = cluster_layer(feats, feats.shape[1], MM)[0]
            ref = sk_cluster_layer(feats, feats.shape[1], one_tree=True)
            layers += 1
            if not np.array_equal(canonical_labels(ours), canonical_labels(ref)):
                diffs += 1
                first = feats if first is None else first
    return layers, diffs, first


def test_hand_condensation_and_features_equal_modgraphs():
    from modgraph.detect.sculpting import reach_features
    rng = np.random.default_rng(7)
    for _ in range(50):
        masks = random_masks(rng)
        g = condense(build_unit_graph(LayeredNetwork([Layer.from_dense(m * 1.0, mask=m) for m in masks])))
        ours = [reach_features(g, l) for l in range(g.n_layers - 1) if g.units_in_layer(l).size >= 2]
        hand = layer_features(masks)
        assert len(ours) == len(hand) and all(np.array_equal(a, b) for a, b in zip(ours, hand))


def test_one_tree_cuts_equal_fresh_fits_per_k():
    rng = np.random.default_rng(3)
    for _ in range(30):
        for feats in layer_features(random_masks(rng)):
            n, children = feats.shape[0], sk_tree(feats)
            for k in range(1, n + 1):
                assert np.array_equal(canonical_labels(cut(children, n, k)), canonical_labels(sk_agglo(feats, k)))


def test_reference_agrees_with_the_spec_examples():
    """The reference itself on the §5.3 tie of test_sculpting.py: z = 0 both ways -> one cluster."""
    h2 = np.array([[1, 1], [1, 0], [0, 1]], dtype=bool)
    outs = np.zeros((3, 16), dtype=bool)
    outs[:, 0::2], outs[:, 1::2] = h2[:, :1], h2[:, 1:]
    assert sk_cluster_layer(np.hstack([h2, outs]), 18).tolist() == [0, 0, 0]


def test_expected_overlap_uses_the_authors_arithmetic():
    """Row a reaches 7 of N = 25 targets, row b all 25: k_ij = 7 = k_i k_j / N exactly, but the
    authors' N (k_i k_j / N²) is 7.000000000000001. "All together" needs k_ij >= e: it fires with
    k_i k_j / N (then a z = 0 tie with "all separate" gives one cluster), not with the authors'
    e, where only "all separate" fires: two clusters."""
    feats = np.zeros((2, 25), dtype=bool)
    feats[0, :7] = feats[1] = True
    assert 7 * 25 / 25 == 7.0 and 25 * (7 * 25 / 25 ** 2) > 7.0
    tree = cluster_tree(cosine_distances(feats))
    assert clusterability_test(feats, tree, 25) == 2 == sk_test(feats, 25)
    assert cluster_layer(feats, 25, MM)[0].tolist() == [0, 1] == canonical_labels(sk_cluster_layer(feats, 25)).tolist()


#: layers of random_masks(default_rng(0)) where the tree from 12-decimal rounded distances merged
#: a near-tie in another order than scikit-learn's (main before issue 15 differed on both)
TIED = [
    [[1, 0, 1, 0, 1, 0], [0, 1, 1, 0, 1, 1], [0, 0, 1, 0, 0, 0], [0, 1, 0, 1, 0, 1], [1, 0, 0, 0, 1, 1],
     [1, 0, 0, 0, 1, 1], [0, 0, 1, 1, 1, 0]],
    [[0, 0, 0, 1, 1, 0], [1, 0, 1, 0, 1, 0], [0, 0, 1, 1, 1, 0], [1, 0, 0, 0, 1, 0], [1, 0, 1, 1, 1, 0],
     [0, 0, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1]],
]


@pytest.mark.parametrize("rows", TIED)
def test_near_tied_merges_follow_scikit_learn(rows):
    feats = np.array(rows, dtype=bool)
    ours = cluster_layer(feats, feats.shape[1], MM)[0]
    assert canonical_labels(ours).tolist() == canonical_labels(sk_cluster_layer(feats, feats.shape[1])).tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_cluster_layer_equals_the_sklearn_reference_on_random_sparse_masks(seed):
    layers, diffs, first = compare(1000, seed)
    assert layers > 1500
    assert diffs == 0, f"{diffs} of {layers} layers differ; first: {first.astype(int).tolist()}"
