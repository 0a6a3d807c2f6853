"""Agreement between two partitions, up to relabelling: NMI and ARI.

Examples
--------
>>> nmi([0, 0, 1, 1], [5, 5, 3, 3]), ari([0, 0, 1, 1], [1, 1, 0, 0])
(1.0, 1.0)
>>> round(nmi([0, 0, 1, 1], [0, 1, 0, 1]), 6)
0.0
"""
from __future__ import annotations

import numpy as np

__all__ = ["contingency", "nmi", "ari"]


def contingency(a, b) -> np.ndarray:
    """Counts of units per (label in ``a``, label in ``b``)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"partitions differ in size: {a.size} and {b.size} labels")
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max(initial=-1) + 1, ib.max(initial=-1) + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    return table


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(a, b) -> float:
    """Normalised mutual information (arithmetic-mean normalisation, as scikit-learn's default).

    Two single-block partitions count as identical (1.0).
    """
    t = contingency(a, b)
    n = t.sum()
    if n == 0:
        raise ValueError("partitions are empty")
    ha, hb = _entropy(t.sum(axis=1)), _entropy(t.sum(axis=0))
    if ha == 0 and hb == 0:
        return 1.0
    nz = t > 0
    pij = t[nz] / n
    outer = np.outer(t.sum(axis=1), t.sum(axis=0))[nz] / n ** 2
    mi = float((pij * np.log(pij / outer)).sum())
    return max(0.0, min(1.0, mi / ((ha + hb) / 2)))


def ari(a, b) -> float:
    """Adjusted Rand index (Hubert and Arabie 1985)."""
    t = contingency(a, b)
    comb = lambda x: (x * (x - 1) / 2).sum()
    n = t.sum()
    sum_ij, sum_a, sum_b = comb(t), comb(t.sum(axis=1)), comb(t.sum(axis=0))
    expected = sum_a * sum_b / (n * (n - 1) / 2) if n > 1 else 0.0
    top = (sum_a + sum_b) / 2
    if top == expected:
        return 1.0
    return float((sum_ij - expected) / (top - expected))
