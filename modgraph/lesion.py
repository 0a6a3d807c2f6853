"""Lesion tests: silence one module of one hidden layer, compare with random same-size sets.

The clusterability papers' importance test (arXiv 2003.04881 §4, 2103.03386 §3.3;
``clusterability.md`` §6): a *sub-module* is the set of units of one hidden layer that
share a label (for a :class:`~modgraph.dag.DagNetwork`: of one hidden group, conv, dense or
merge). Lesioning it zeroes its incoming weights and biases (ReLU output 0; a DAG's channels
are silenced in :meth:`~modgraph.dag.DagNetwork.forward`, where the op that makes them writes
them, so later BN shifts and activations still apply, as after zeroing the weights); the
random control lesions the units whose label is ``c`` after the layer's labels (those ≠ −1)
are permuted — a fresh permutation per trial, so the control has the same size. Accuracy
comes from a numpy forward pass over the exported weights (no torch); the caller supplies
the test set with integer class labels (accuracy = argmax).

Per sub-module: ``diff`` = acc(lesioned) − acc(intact); ``p = (1 + #{random < true}) /
(n + 1)``; the P1 class (important, prunable, ...; §11 boundaries); the P2/P3 *mean
percentile* (rank of the true lesion's mean per-class accuracy among the random ones, low
= important) and *range percentile* (rank of the spread of per-class changes divided by
their mean, high = class-specialised). Across sub-modules: Fisher's method on the
percentiles shifted by half a rank step, and a χ² test of uniformity of the ranks.

Examples
--------
>>> import numpy as np
>>> from modgraph.network import Layer, LayeredNetwork
>>> net = LayeredNetwork([Layer.from_dense(np.eye(2)), Layer.from_dense(np.eye(2), activation="identity")])
>>> x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
>>> lesion_accuracy(net, x, y), lesion_accuracy(net, x, y, silence={1: [1]})
(1.0, 0.5)
"""
from __future__ import annotations

import numpy as np
from scipy import stats as _st

from modgraph.dag import DagNetwork
from modgraph.errors import ModgraphError
from modgraph.network import ACTIVATIONS, LayeredNetwork

__all__ = ["lesion_accuracy", "importance", "classify_lesion"]


def _as_chain(network):
    """The LayeredNetwork of a chain (a chain DagNetwork included), or None for a DAG."""
    if isinstance(network, LayeredNetwork):
        return network
    if not isinstance(network, DagNetwork):
        raise TypeError(f"expected a LayeredNetwork or a DagNetwork, got {type(network).__name__}")
    return network.to_layered() if network.is_chain else None


def _dense_layers(network: LayeredNetwork):
    return [(l.dense().T, np.asarray(l.bias, dtype=np.float64), l.activation, l.alpha) for l in network.layers]


def _single_output(net: DagNetwork):
    if len(net.outputs) != 1:
        raise ModgraphError(f"lesion tests score one output tensor; {net.source or 'this network'} has "
                            f"{len(net.outputs)}")


def _forward_from(layers, h, start: int, silence: dict):
    """Run layers ``start..`` from the activation ``h`` of unit layer ``start``; silence units."""
    for i in range(start, len(layers)):
        w, b, act, alpha = layers[i]
        z = h @ w + b
        units = silence.get(i + 1)
        if units is not None and len(units):
            z[:, units] = 0.0                     # incoming weights and bias zeroed
        h = ACTIVATIONS[act](z, alpha)
    return h


def _class_accuracy(out, y, n_classes):
    hit = out.argmax(axis=1) == y
    per_class = np.bincount(y, hit, minlength=n_classes) / np.maximum(np.bincount(y, minlength=n_classes), 1)
    return float(hit.mean()), per_class


def lesion_accuracy(network, x, y, *, silence: dict | None = None) -> float:
    """Test accuracy with units silenced.

    For a chain (a :class:`LayeredNetwork`, or a DagNetwork that is one) ``silence`` maps a layer
    (1 = first hidden layer) to unit indices; for a DAG it maps a group (name or index) to channel
    indices, silenced in the numpy forward pass (:meth:`DagNetwork.forward`: the channels' incoming
    weights and bias as if zeroed).
    """
    chain = _as_chain(network)
    if chain is None:
        _single_output(network)
        out = network.forward(x, silence=silence)
    else:
        out = _forward_from(_dense_layers(chain), np.asarray(x, dtype=np.float64), 0, silence or {})
    return float((out.argmax(axis=1) == np.asarray(y)).mean())


def classify_lesion(diff: float, p: float, n_random: int, size: int, width: int, *,
                    small_fraction: float = 0.05) -> str:
    """P1's class of a sub-module lesion (``clusterability.md`` §6.2 with the §11 boundaries)."""
    if size >= width:
        return "complete"
    if size <= int(small_fraction * width):
        return "small"
    sig, big = p < 1.0 / n_random, diff <= -0.01
    if sig and big:
        return "important"
    if p == 1.0 and abs(diff) < 0.01:
        return "prunable"
    if sig:
        return "sig-but-not-diff"
    if big:
        return "least_important" if p == 1.0 else "diff-but-not-sig"
    return "other"


def _percentile(true, rand, *, high: bool = False) -> float:
    beaten = np.sum(rand > true) if high else np.sum(rand < true)
    return float((1 + beaten) / (len(rand) + 1))


def _range_stat(per_class, base_per_class):
    change = per_class - base_per_class
    mean = change.mean()
    return float(np.ptp(change) / abs(mean)) if mean != 0 else 0.0


def _labels(labels, total: int) -> np.ndarray:
    labels = np.asarray(getattr(labels, "labels", labels), dtype=np.int64)
    if labels.shape != (total,):
        raise ValueError(f"labels: expected one label per unit of the network ({total}), got shape {labels.shape}")
    return labels


def _layer_labels(network, labels):
    labels = _labels(labels, sum(network.widths))
    offsets = np.concatenate([[0], np.cumsum(network.widths)])
    return [labels[offsets[l]:offsets[l + 1]] for l in range(len(network.widths))]


def importance(network, labels, x, y, *, n_random: int = 20, seed: int = 0,
               small_fraction: float = 0.05) -> dict:
    """Lesion every sub-module of every hidden layer against ``n_random`` random lesions.

    Parameters
    ----------
    network : LayeredNetwork or DagNetwork
    labels : Partition or int array
        One label per unit of ``network`` in layer order (inputs first; −1 = removed), e.g.
        a partition of ``build_unit_graph(network)``; for a DAG in its unit order
        (``network.unit_names()``, the split view's units).
    x, y : arrays
        Test inputs (n, n_in), or (n, C, H, W) for a DAG with an image input, and integer class
        labels (n,).
    n_random : int
    seed : int
        Seeds the label permutations.

    Returns
    -------
    dict
        ``base_accuracy``, ``modules`` (one record per sub-module: layer (a DAG group's depth,
        with ``group`` its name), label, size, accuracy, diff, p, class, mean/range
        percentiles, per-class accuracy, mean random accuracy, effect size) and the combined ``fisher_p_mean``, ``fisher_p_range``,
        ``chi2_p_mean``.
    """
    if n_random < 1:
        raise ValueError(f"n_random must be at least 1, got {n_random}")
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)
    chain = _as_chain(network)
    if chain is None:
        return _dag_importance(network, labels, x, y, n_random, seed, small_fraction)
    network = chain
    layers, per_layer = _dense_layers(network), _layer_labels(network, labels)
    n_classes = max(network.n_outputs, int(y.max()) + 1)
    acts = [x]
    for i in range(len(layers) - 1):                      # intact activations, reused by every lesion
        acts.append(_forward_from(layers[i:i + 1], acts[-1], 0, {}))
    base, base_pc = _class_accuracy(_forward_from(layers, x, 0, {}), y, n_classes)
    rng = np.random.default_rng(seed)
    modules = []
    for h in range(1, len(network.widths) - 1):
        lab = per_layer[h]
        alive = np.flatnonzero(lab >= 0)

        def score(units, h=h):
            out = _forward_from(layers, acts[h - 1], h - 1, {h: units})
            return _class_accuracy(out, y, n_classes)

        for c in np.unique(lab[alive]):
            true_acc, true_pc = score(np.flatnonzero(lab == c))
            rand = [score(alive[rng.permutation(lab[alive]) == c]) for _ in range(n_random)]
            modules.append(_record(h, int(c), int((lab == c).sum()), network.widths[h], base, base_pc,
                                   true_acc, true_pc, rand, n_random, small_fraction))
    return {"base_accuracy": base, "n_random": n_random, "seed": seed, "modules": modules,
            **_combine(modules, n_random)}


def _dag_importance(net: DagNetwork, labels, x, y, n_random, seed, small_fraction) -> dict:
    """:func:`importance` of a DAG: the sub-modules of every hidden group (conv, dense, merge)."""
    _single_output(net)
    labels = _labels(labels, net.n_units)
    trace = net._run(net._check_input(x), {}, keep=True)             # intact tensors, reused by every lesion
    (out_slot,) = net.outputs
    n_classes = max(trace[out_slot].shape[1], int(y.max()) + 1)
    base, base_pc = _class_accuracy(trace[out_slot], y, n_classes)
    rng = np.random.default_rng(seed)
    modules = []
    for g, grp in enumerate(net.groups):
        if grp.kind in ("input", "output"):
            continue
        lab = labels[net.unit_offsets[g]:net.unit_offsets[g + 1]]
        alive = np.flatnonzero(lab >= 0)
        step = net.group_step(g)
        known = {j: trace[j] for j in range(step)}

        def score(units, step=step, known=known):
            out = net._run(None, {step: units}, start=step, known=known)[out_slot]
            return _class_accuracy(out, y, n_classes)

        for c in np.unique(lab[alive]):
            true_acc, true_pc = score(np.flatnonzero(lab == c))
            rand = [score(alive[rng.permutation(lab[alive]) == c]) for _ in range(n_random)]
            rec = _record(grp.depth, int(c), int((lab == c).sum()), grp.n_units, base, base_pc, true_acc, true_pc,
                          rand, n_random, small_fraction)
            modules.append({"group": grp.name, **rec})
    return {"base_accuracy": base, "n_random": n_random, "seed": seed, "modules": modules,
            **_combine(modules, n_random)}


def _record(h, c, size, width, base, base_pc, true_acc, true_pc, rand, n, small_fraction) -> dict:
    rand_acc = np.array([a for a, _ in rand])
    rand_mean_pc = np.array([pc.mean() for _, pc in rand])
    rand_range = np.array([_range_stat(pc, base_pc) for _, pc in rand])
    diff, p = true_acc - base, _percentile(true_acc, rand_acc)
    return {"layer": h, "label": c, "size": size, "accuracy": true_acc, "diff": diff, "p": p,
            "class": classify_lesion(diff, p, n, size, width, small_fraction=small_fraction),
            "mean_percentile": _percentile(true_pc.mean(), rand_mean_pc),
            "range_percentile": _percentile(_range_stat(true_pc, base_pc), rand_range, high=True),
            "mean_random_accuracy": float(rand_acc.mean()),
            "effect_size": float(rand_acc.mean() / true_acc) if true_acc > 0 else None,
            "per_class_accuracy": true_pc.tolist()}


def _combine(modules, n) -> dict:
    """Fisher's method on half-step-shifted percentiles; χ² uniformity of the mean ranks."""
    if not modules:
        return {"fisher_p_mean": None, "fisher_p_range": None, "chi2_p_mean": None}
    out = {}
    for key, name in (("mean_percentile", "fisher_p_mean"), ("range_percentile", "fisher_p_range")):
        q = np.array([m[key] for m in modules]) - 0.5 / (n + 1)
        out[name] = float(_st.chi2.sf(-2.0 * np.log(q).sum(), 2 * q.size))
    ranks = np.rint(np.array([m["mean_percentile"] for m in modules]) * (n + 1)).astype(int) - 1
    counts = np.bincount(ranks, minlength=n + 1)
    out["chi2_p_mean"] = float(_st.chisquare(counts).pvalue)
    return out
