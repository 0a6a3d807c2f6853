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


def _kmeans_pp(x: np.ndarray, x_sq: np.ndarray, k: int, n_init: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ for ``n_init`` restarts at once: centres (n_init, k, d).

    Each new centre is the best (lowest potential) of ``2 + ln k`` candidates drawn with
    probability proportional to the squared distance to the nearest chosen centre.
    """
    n, r = x.shape[0], n_init
    trials = 2 + int(np.log(k))
    rows = np.arange(r)
    first = rng.integers(n, size=r)
    centres = np.empty((r, k, x.shape[1]))
    centres[:, 0] = x[first]
    closest = _sq_dist(x, x_sq, centres[:, :1])[..., 0]                 # (R, n)
    for c in range(1, k):
        cum = np.cumsum(closest, axis=1)                                # (R, n)
        total = cum[:, -1:]
        u = rng.random((r, trials)) * total
        cand = np.empty((r, trials), dtype=np.int64)
        for i in range(r):
            cand[i] = np.searchsorted(cum[i], u[i], side="right")
        none_left = total[:, 0] <= 0                                     # fewer distinct points than k
        cand[none_left] = rng.integers(n, size=(int(none_left.sum()), trials))
        cand = np.minimum(cand, n - 1)
        pts = x[cand]                                                    # (R, T, d)
        dist = x_sq[None, None, :] - 2.0 * (pts @ x.T) + np.einsum("rtd,rtd->rt", pts, pts)[..., None]
        dist = np.minimum(closest[:, None, :], np.maximum(dist, 0.0))    # (R, T, n)
        best = dist.sum(axis=2).argmin(axis=1)
        centres[:, c] = pts[rows, best]
        closest = dist[rows, best]
    return centres


def _assign(c: np.ndarray, x_aug_t: np.ndarray):
    """Nearest centre of every point: labels (A, n) and ``|c|² − 2 c·x`` at it (A, n).

    Scores are laid out (k, A, n) so each centre's row is contiguous; the minimum is taken
    in k vectorised passes (numpy's argmin along a short last axis loops per row and was
    the bottleneck).
    """
    c_aug = np.concatenate([-2.0 * c, np.einsum("akd,akd->ak", c, c)[..., None]], axis=2)
    score = np.swapaxes(c_aug, 0, 1) @ x_aug_t                           # (k, A, n)
    best, arg = score[0].copy(), np.zeros(score[0].shape, dtype=np.int64)
    better = np.empty(best.shape, dtype=bool)
    for j in range(1, score.shape[0]):
        np.less(score[j], best, out=better)
        np.putmask(arg, better, j)
        np.minimum(best, score[j], out=best)
    return arg, best


def _lloyd(x, x_sq, centres, *, max_iter: int, tol: float):
    """Batched Lloyd iterations on centres (R, k, d); restarts leave the batch once converged.

    A restart has converged when no label changed or its centres moved (squared, summed)
    at most ``tol``. Returns labels (R, n) and inertia (R,).
    """
    r, k, d = centres.shape
    n = x.shape[0]
    x64, x = x, x.astype(np.float32)                 # iterate in float32 (half the memory traffic)
    centres = centres.astype(np.float32)
    labels = np.full((r, n), -1)
    active = np.arange(r)
    x_aug_t = np.vstack([x.T, np.ones((1, n), np.float32)])              # score = −2 c·x + |c|²
    ks = np.arange(k)[:, None, None]
    for _ in range(max_iter):
        c = centres[active]
        a = active.size
        new, best = _assign(c, x_aug_t)
        onehot = (new[None] == ks).astype(np.float32)                    # (k, A, n)
        counts = onehot.sum(axis=2).T                                    # (A, k)
        sums = np.swapaxes((onehot.reshape(k * a, n) @ x).reshape(k, a, d), 0, 1)
        moved = np.where(counts[..., None] > 0, sums / np.maximum(counts, 1)[..., None], c)
        for ai, ci in zip(*np.nonzero(counts == 0)):       # empty cluster: move it to the farthest point
            moved[ai, ci] = x[int(np.argmax(best[ai] + x_sq))]
        shift = ((moved - c) ** 2).sum(axis=(1, 2))
        done = (new == labels[active]).all(axis=1) | (shift <= tol)
        centres[active], labels[active] = moved, new
        active = active[~done]
        if active.size == 0:
            break
    # one last step in float64: exact means of the final clusters, assignment and inertia
    onehot = (labels[None] == ks).astype(np.float64)                     # (k, R, n)
    counts = onehot.sum(axis=2).T
    sums = np.swapaxes((onehot.reshape(k * r, n) @ x64).reshape(k, r, d), 0, 1)
    centres = np.where(counts[..., None] > 0, sums / np.maximum(counts, 1)[..., None], centres)
    labels, best = _assign(centres, np.vstack([x64.T, np.ones((1, n))]))
    return labels, np.maximum(best + x_sq, 0.0).sum(axis=1)


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
    starts = _kmeans_pp(x, x_sq, k, n_init, rng)
    abs_tol = tol * float(np.mean(np.var(x, axis=0)))
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n * k))
    best_labels, best_inertia = None, np.inf
    for lo in range(0, n_init, chunk):
        labels, inertia = _lloyd(x, x_sq, starts[lo:lo + chunk], max_iter=max_iter, tol=abs_tol)
        i = int(np.argmin(inertia))                 # first lowest: deterministic tie-break
        if inertia[i] < best_inertia:
            best_labels, best_inertia = labels[i], float(inertia[i])
    return best_labels.astype(np.int64), best_inertia
