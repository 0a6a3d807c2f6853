"""Seeded, vectorised k-means (greedy k-means++ init, Lloyd, restarts): the spectral detector's last step.

The restarts run side by side as one batch of arrays (in chunks bounded in memory), so
25 restarts on a 2,000 × 12 embedding cost a few Lloyd passes of numpy matrix products.
Follows the textbook algorithm (Arthur & Vassilvitskii 2007, greedy variant with
``2 + ln k`` candidate centres per step, as in scikit-learn): same seed → same labels.

Examples
--------
>>> import numpy as np
>>> x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
>>> labels, inertia = kmeans(x, 2, n_init=3, seed=0)
>>> bool(labels[0] == labels[1] != labels[2] == labels[3]), round(inertia, 3)
(True, 0.01)
"""
from __future__ import annotations

import numpy as np

__all__ = ["kmeans"]

_CHUNK_ELEMENTS = 4_000_000          # restarts × points × clusters held at once


def _sq_dist(x: np.ndarray, x_sq: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared distances, shape (..., n, k), from points x (n, d) to centres (..., k, d)."""
    c_sq = np.einsum("...kd,...kd->...k", centres, centres)
    d = x_sq[:, None] - 2.0 * (x @ np.swapaxes(centres, -1, -2)) + c_sq[..., None, :]
    return np.maximum(d, 0.0)


def _kmeans_pp(x: np.ndarray, x_sq: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++: each new centre is the best of ``2 + ln k`` D²-sampled candidates."""
    n = x.shape[0]
    trials = 2 + int(np.log(k))
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    closest = _sq_dist(x, x_sq, centres[:1])[:, 0]
    for c in range(1, k):
        total = closest.sum()
        if total <= 0:                               # fewer distinct points than k: take any
            cand = rng.integers(n, size=trials)
        else:
            cand = np.searchsorted(np.cumsum(closest), rng.random(trials) * total)
            cand = np.minimum(cand, n - 1)
        dist = np.minimum(closest[None, :], _sq_dist(x, x_sq, x[cand])[:, :].T)   # (trials, n)
        best = int(np.argmin(dist.sum(axis=1)))
        centres[c] = x[cand[best]]
        closest = dist[best]
    return centres


def _lloyd(x, x_sq, centres, *, max_iter: int, tol: float):
    """Batched Lloyd iterations on centres (R, k, d); restarts leave the batch once converged.

    A restart has converged when no label changed or its centres moved (squared, summed)
    at most ``tol``. Returns labels (R, n) and inertia (R,).
    """
    r, k, _ = centres.shape
    n = x.shape[0]
    centres = centres.copy()
    labels = np.full((r, n), -1)
    active = np.arange(r)
    rows = np.arange(n)
    for _ in range(max_iter):
        c = centres[active]
        score = np.einsum("rkd,rkd->rk", c, c)[:, None, :] - 2.0 * (x @ np.swapaxes(c, 1, 2))  # (A, n, k)
        new = score.argmin(axis=2)
        onehot = np.zeros((active.size, n, k))
        np.put_along_axis(onehot, new[..., None], 1.0, axis=2)
        counts = onehot.sum(axis=1)                                       # (A, k)
        moved = np.swapaxes(onehot, 1, 2) @ x / np.maximum(counts, 1.0)[..., None]
        moved = np.where(counts[..., None] > 0, moved, c)
        for ai, ci in zip(*np.nonzero(counts == 0)):       # empty cluster: move it to the farthest point
            moved[ai, ci] = x[int(np.argmax(score[ai, rows, new[ai]] + x_sq))]
        shift = ((moved - c) ** 2).sum(axis=(1, 2))
        done = (new == labels[active]).all(axis=1) | (shift <= tol)
        centres[active], labels[active] = moved, new
        active = active[~done]
        if active.size == 0:
            break
    dist = _sq_dist(x, x_sq, centres)
    labels = dist.argmin(axis=2)
    inertia = np.take_along_axis(dist, labels[..., None], axis=2)[..., 0].sum(axis=1)
    return labels, inertia


def kmeans(x, k: int, *, n_init: int = 10, seed: int = 0, max_iter: int = 300,
           tol: float = 1e-4) -> tuple[np.ndarray, float]:
    """Cluster the rows of ``x`` into ``k`` groups; keep the restart with the lowest inertia.

    Parameters
    ----------
    x : array (n, d)
    k : int
        Number of clusters, 1 ≤ k ≤ n.
    n_init : int
        Restarts, each from its own greedy k-means++ initialisation.
    seed : int
        Seeds the initialisations.
    max_iter, tol : int, float
        Lloyd stops when no label changes or every centre moves less than
        ``tol`` × the mean per-feature variance (squared).

    Returns
    -------
    labels : int array (n,)
    inertia : float
        Sum of squared distances to the assigned centres.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= {n} (the number of points), got k = {k}")
    if n_init < 1:
        raise ValueError(f"n_init must be at least 1, got {n_init}")
    rng = np.random.default_rng(seed)
    x_sq = np.einsum("nd,nd->n", x, x)
    starts = np.stack([_kmeans_pp(x, x_sq, k, rng) for _ in range(n_init)])
    abs_tol = tol * float(np.mean(np.var(x, axis=0)))
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n * k))
    best_labels, best_inertia = None, np.inf
    for lo in range(0, n_init, chunk):
        labels, inertia = _lloyd(x, x_sq, starts[lo:lo + chunk], max_iter=max_iter, tol=abs_tol)
        i = int(np.argmin(inertia))                 # first lowest: deterministic tie-break
        if inertia[i] < best_inertia:
            best_labels, best_inertia = labels[i], float(inertia[i])
    return best_labels.astype(np.int64), best_inertia
