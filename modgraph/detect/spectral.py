"""Spectral clustering into exactly k modules, and the normalised cut (n-cut).

The clusterability papers' method (Filan et al., arXiv 2003.04881 and 2103.03386;
``clusterability.md`` §2–3): on the |w| graph of units,

1. remove units whose weighted degree is 0 (labelled −1 in the result);
2. ``L = I − D^{-1/2} A D^{-1/2}``, take the eigenvectors of its k smallest eigenvalues
   (the trivial one included), divide row i by ``sqrt(d_i)`` (the Shi–Malik relaxation;
   no row normalisation, so not Ng–Jordan–Weiss), flip each column so its largest-|·|
   entry is positive;
3. k-means with greedy k-means++ and ``n_init`` restarts, keeping the lowest inertia.

The eigenvectors are exact: edges only join consecutive layers, so the graph is
bipartite (odd vs even layers) and the spectrum of ``D^{-1/2} A D^{-1/2}`` is ±σ of its
off-diagonal block, found by a dense eigendecomposition of the smaller side's Gram matrix
(522 units for a 784-256×4-10 MLP instead of 1,818), or by ARPACK's partial SVD of the
sparse block when that side is larger than ``dense_limit``. A full dense solve and ARPACK
Lanczos on ``D^{-1/2} A D^{-1/2}`` (above ``dense_limit`` units) are the alternatives. The statistic this
method reports is ``stats["ncut"]`` (lower = more clusterable; range [0, k]).

Examples
--------
>>> import numpy as np
>>> from modgraph.network import Layer, LayeredNetwork
>>> from modgraph.graph import build_unit_graph
>>> w = np.kron(np.eye(2), np.ones((2, 2)))          # two disjoint 2-2-2 sub-networks
>>> g = build_unit_graph(LayeredNetwork([Layer.from_dense(w), Layer.from_dense(w)]))
>>> p = spectral(g, k=2, seed=0)
>>> p.labels.tolist(), p.stats["ncut"]
([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1], 0.0)
"""
from __future__ import annotations

import contextlib

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from modgraph.detect._registry import register
from modgraph.detect._kmeans import kmeans
from modgraph.errors import FormatError, ModgraphError
from modgraph.graph import UnitGraph
from modgraph.partition import Partition

__all__ = ["spectral", "ncut", "spectral_embedding"]

STAT_KEY = "ncut"


def _unit_labels(graph: UnitGraph, partition_or_labels) -> np.ndarray:
    labels = getattr(partition_or_labels, "labels", partition_or_labels)
    labels = np.asarray(labels)
    if labels.shape != (graph.n_units,) or labels.dtype.kind not in "iub":
        raise FormatError("<labels>", "labels", f"{graph.n_units} integer labels (one per unit)",
                          f"shape {labels.shape}, dtype {labels.dtype}")
    return labels.astype(np.int64)


def ncut(graph: UnitGraph, partition_or_labels) -> float:
    """Normalised cut ``Σ_c cut(c) / (vol(c) + 1e-8)`` of a partition of the |w| graph.

    ``cut(c)`` is the |w| on edges leaving module c, ``vol(c)`` the summed |w| degree of
    its units. Units labelled −1 are left out together with their edges. For two
    modules this equals NetworkX ``normalized_cut_size``.

    Parameters
    ----------
    graph : UnitGraph
    partition_or_labels : Partition or int array (n_units,)

    Examples
    --------
    >>> from modgraph.graph import UnitGraph
    >>> g = UnitGraph(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([0, 1, 0]),
    ...               np.array([2, 3, 3]), np.array([1.0, 1.0, -2.0]), (2, 2))
    >>> round(ncut(g, [0, 1, 0, 1]), 4)       # cut 2 on each side, volumes 4 and 4
    1.0
    """
    labels = _unit_labels(graph, partition_or_labels)
    ls, ld, w = labels[graph.src], labels[graph.dst], graph.weight
    if labels.size and labels.min() < 0:
        alive = (ls >= 0) & (ld >= 0)
        ls, ld, w = ls[alive], ld[alive], w[alive]
    n_mod = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    vol = np.bincount(ls, w, minlength=n_mod) + np.bincount(ld, w, minlength=n_mod)
    inside = ls == ld
    cut = vol - 2.0 * np.bincount(ls[inside], w[inside], minlength=n_mod)   # exactly 0 when nothing is cut
    return float(np.sum(np.maximum(cut, 0.0) / (vol + 1e-8)))


_THREADPOOLS = []                                        # one ThreadpoolController, made on first use


def _one_blas_thread():
    """Single-threaded BLAS for the small dense solves (measured: a 522² eigh takes 0.03 s
    on one OpenBLAS thread, 1–2 s on two threads of a busy 2-core machine).

    Finding the thread pools costs ~1 ms (a tenth of a whole 1,700-unit spectral call), so
    it happens once per process; numpy's and scipy's BLAS are loaded by then."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:                                  # pragma: no cover - optional
        return contextlib.nullcontext()
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1)


def _clean(graph: UnitGraph) -> tuple[UnitGraph, np.ndarray]:
    """Drop units of |w| degree 0 (isolated ones, and those with only 0-valued edges)."""
    deg = np.bincount(graph.src, graph.weight, graph.n_units) + np.bincount(graph.dst, graph.weight,
                                                                             graph.n_units)
    keep = deg > 0
    return (graph if keep.all() else graph.subgraph(keep)), keep


def _top_bipartite(graph: UnitGraph, inv_sqrt: np.ndarray, k: int, *, dense_limit: int, seed: int):
    """Top-k eigenpairs of ``M = D^-1/2 A D^-1/2``, which is bipartite: odd vs even layers.

    With ``B`` the block of ``M`` between the larger side (rows) and the smaller (columns),
    the eigenvalues of ``M`` are ±σ(B) and the eigenvector of +σ is ``[u; v] / √2`` for the
    singular pair (u, σ, v). Up to ``dense_limit`` units on the smaller side the top k come
    from the dense eigendecomposition of the Gram matrix ``BᵀB`` (exact like a dense solve of
    ``M``), summed layer by layer of the larger side: a layer only touches the smaller-side
    layers just before and after it, so each term is a small dense product. Above it they
    come from ARPACK's partial SVD of the sparse B (``svds``, no factorisation; 10⁵ units in
    seconds). Returns None when σ_k ≈ 0.
    """
    layer = graph.layer
    small = layer % 2 == 1
    if 2 * int(small.sum()) > small.size:
        small = ~small
    cols = np.flatnonzero(small)
    cols = cols[np.argsort(layer[cols], kind="stable")]          # smaller side, by layer
    rows = np.flatnonzero(~small)
    n_small = cols.size
    pos = np.empty(layer.size, dtype=np.int64)
    pos[cols] = np.arange(n_small)
    src_small = small[graph.src]
    big = np.where(src_small, graph.dst, graph.src)               # each edge's end on the larger side
    col = pos[np.where(src_small, graph.src, graph.dst)]          # and its column
    w = graph.weight * inv_sqrt[graph.src] * inv_sqrt[graph.dst]
    vecs = np.zeros((layer.size, k))
    if n_small > dense_limit:
        if k >= n_small:                                          # ARPACK needs k < min(shape)
            return None
        pos[rows] = np.arange(rows.size)
        block = sp.csr_matrix((w, (pos[big], col)), shape=(rows.size, n_small))
        v0 = np.random.default_rng(seed).uniform(-1, 1, n_small)
        _, sigma, vt = sla.svds(block, k=k, tol=1e-10, v0=v0)
        order = np.argsort(sigma)[::-1]
        sigma, v = sigma[order], vt[order].T
        if sigma[-1] <= 1e-5:
            return None
        vecs[rows] = (block @ v) / (sigma * np.sqrt(2.0))
    else:
        # one dense block per layer of the larger side, against the smaller side's layers l ± 1
        col_layer = layer[cols]
        rows = rows[np.argsort(layer[rows], kind="stable")]
        groups, first, size = np.unique(layer[rows], return_index=True, return_counts=True)
        lo, hi = np.searchsorted(col_layer, groups - 1), np.searchsorted(col_layer, groups + 2)
        base = np.concatenate([[0], np.cumsum(size * (hi - lo))])
        group = np.zeros(layer.max() + 1, dtype=np.int64)
        group[groups] = np.arange(groups.size)
        g = group[layer[big]]
        pos[rows] = np.arange(rows.size) - np.repeat(first, size)
        flat = base[g] + pos[big] * (hi - lo)[g] + (col - lo[g])
        blocks = np.bincount(flat, w, base[-1])
        gram = np.zeros((n_small, n_small))
        for i in range(groups.size):
            dense = blocks[base[i]:base[i + 1]].reshape(size[i], hi[i] - lo[i])
            gram[lo[i]:hi[i], lo[i]:hi[i]] += dense.T @ dense           # numpy calls syrk for AᵀA
        # symmetric, so its transpose (Fortran order: LAPACK's own) is the same matrix, and no copy is made
        vals, v = la.eigh(gram.T, subset_by_index=(n_small - k, n_small - 1), overwrite_a=True, check_finite=False)
        vals, v = vals[::-1], np.ascontiguousarray(v[:, ::-1])
        if vals[-1] <= 1e-10:
            return None
        sigma = np.sqrt(vals)
        for i in range(groups.size):
            dense = blocks[base[i]:base[i + 1]].reshape(size[i], hi[i] - lo[i])
            vecs[rows[first[i]:first[i] + size[i]]] = (dense @ v[lo[i]:hi[i]]) / (sigma * np.sqrt(2.0))
    vecs[cols] = v / np.sqrt(2.0)
    return sigma, vecs


def spectral_embedding(graph: UnitGraph, k: int, *, seed: int = 0, solver: str = "auto",
                       dense_limit: int = 5000) -> tuple:
    """The k-dimensional embedding ``U / sqrt(d)`` and the k smallest eigenvalues of ``L_sym``.

    ``graph`` must have no unit of |w| degree 0. ``solver``: ``"bipartite"`` (uses that edges
    only join consecutive layers, so odd and even layers form a bipartite graph and the spectrum
    comes from the smaller side: exact dense Gram solve up to ``dense_limit`` units there,
    ARPACK partial SVD of the sparse block above), ``"dense"`` (full symmetric
    eigendecomposition), ``"arpack"`` (ARPACK Lanczos for the k largest eigenvalues of
    ``D^-1/2 A D^-1/2 = I - L_sym``: no factorisation, so it scales to 10⁵ units), or
    ``"auto"``: bipartite when it applies and σ_k > 0, else dense up to ``dense_limit`` units,
    else arpack.
    """
    if solver not in ("auto", "bipartite", "dense", "arpack"):
        raise ValueError(f"unknown solver {solver!r}; choose one of arpack, auto, bipartite, dense")
    n, w = graph.n_units, graph.weight
    d = np.bincount(graph.src, w, n) + np.bincount(graph.dst, w, n)
    inv_sqrt = 1.0 / np.sqrt(d)
    side = graph.layer % 2 == 0
    found, used = None, solver
    if solver == "bipartite" and not graph.is_consecutive:
        raise ModgraphError(f"spectral solver 'bipartite' needs every edge from layer l to l + 1; this "
                            f"{graph.view} view has edges that skip layers or is not layered: use solver "
                            "'auto', 'dense' or 'arpack'")
    if solver in ("auto", "bipartite") and graph.is_consecutive and k <= min(side.sum(), (~side).sum()):
        found, used = _top_bipartite(graph, inv_sqrt, k, dense_limit=dense_limit, seed=seed), "bipartite"
    if found is None:
        m = (sp.diags(inv_sqrt) @ graph.adjacency() @ sp.diags(inv_sqrt)).tocsr()   # D^-1/2 A D^-1/2 = I - L_sym
    if found is None and (solver == "dense" or (solver != "arpack" and n <= dense_limit)):
        mu, vecs = la.eigh(m.toarray(), subset_by_index=(n - k, n - 1), check_finite=False)
        found, used = (mu[::-1], vecs[:, ::-1]), "dense"
    if found is None:
        v0 = np.random.default_rng(seed).uniform(-1, 1, n)
        mu, vecs = sla.eigsh(m, k=k, which="LA", v0=v0, tol=1e-10)
        order = np.argsort(mu)[::-1]
        found, used = (mu[order], vecs[:, order]), "arpack"
    mu, vecs = found
    emb = vecs * inv_sqrt[:, None]
    sign = np.sign(emb[np.abs(emb).argmax(axis=0), np.arange(k)])
    return emb * np.where(sign == 0, 1.0, sign), 1.0 - np.asarray(mu), used


@register("spectral")
def spectral(graph: UnitGraph, *, seed: int = 1, k: int = 12, n_init: int | None = None,
             solver: str = "auto", dense_limit: int = 5000) -> Partition:
    """Split ``graph`` into exactly ``k`` modules by normalised spectral clustering.

    Parameters
    ----------
    graph : UnitGraph
    seed : int
        Seeds k-means (and the sparse solver's start vector).
    k : int
        Number of modules (P1: 4, P2: 12, P3: 16).
    n_init : int, optional
        k-means restarts; default 25, or 100 above 2,000 units (P2).
    solver : str
        Eigen-solver, see :func:`spectral_embedding` (all are exact up to rounding but
        ``arpack``, which is accurate to its tolerance).
    dense_limit : int
        Largest (side of the) graph solved with a dense eigendecomposition.

    Returns
    -------
    Partition
        Labels per unit of ``graph`` (−1: |w| degree 0). ``stats``: ``ncut``, ``k``,
        ``n_init``, ``inertia``, ``eigenvalues``, ``solver``, ``n_removed``.

    Raises
    ------
    FormatError
        An empty graph, a graph without weighted edges, or ``k`` outside 1..(units left).
    """
    if graph.n_units == 0:
        raise FormatError("<graph>", "units", "a graph with at least one unit", "an empty graph")
    clean, keep = _clean(graph)
    if clean.n_edges == 0:
        raise FormatError("<graph>", "edges", "at least one edge with |w| > 0", f"none among {graph.n_units} units")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= clean.n_units:
        raise FormatError("<graph>", "k", f"an integer from 1 to {clean.n_units} (the units with edges)", repr(k))
    if n_init is None:
        n_init = 100 if clean.n_units > 2000 else 25
    with _one_blas_thread():
        emb, vals, used = spectral_embedding(clean, int(k), seed=seed, solver=solver, dense_limit=dense_limit)
        km_labels, inertia = kmeans(emb, int(k), n_init=n_init, seed=seed)
    labels = np.full(graph.n_units, -1, dtype=np.int64)
    labels[keep] = km_labels
    stats = {"ncut": ncut(clean, km_labels), "k": int(k), "n_init": int(n_init), "inertia": inertia,
             "eigenvalues": [float(v) for v in vals], "solver": used, "n_removed": int((~keep).sum())}
    return Partition(labels, method="spectral", seed=seed, stats=stats)
