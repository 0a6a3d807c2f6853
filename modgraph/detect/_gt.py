"""The graph-tool bridge: the only modgraph module that imports graph_tool.

Everything graph-tool specific lives here, so the rest of modgraph sees numpy arrays only:

- :func:`to_graph_tool` builds an undirected ``graph_tool.Graph`` from edge arrays with a
  ``weight`` edge property (|w|, a ``double``) and, for a :class:`~modgraph.graph.UnitGraph`,
  a ``layer`` vertex property.
- :func:`seed_all` seeds graph-tool's global C++ RNG and numpy's global RNG together; modgraph
  seed ``s`` becomes graph-tool seed ``s + 1`` because ``gt.seed_rng(0)`` means "random".
- :func:`fit_blockmodel` runs several restarts of ``minimize_blockmodel_dl`` or
  ``minimize_nested_blockmodel_dl`` (each its own derived seed), keeps the lowest finite
  description length, refines it with greedy ``multiflip_mcmc_sweep(beta=inf)`` sweeps and
  returns plain, compacted label arrays (copied while the state is alive: graph-tool 2.45 hands
  out views into freed memory otherwise).
- :func:`modularity` is ``gt.modularity``, the common yardstick of all methods.
- :func:`best_modularity_partition` (restarts of ``ModularityState``, refined by the same greedy loop, the
  highest exact Q kept, ties to the smallest canonical labelling) and :func:`blockmodel_dl` (the
  description length of a *given* partition under a ``BlockState``) and :func:`bipartite_dl` (the
  same for a bipartite multigraph with integer multiplicities, sides kept in separate blocks)
  serve ``subfunctions``.

graph-tool 2.45 facts absorbed here (see ``ecosystem-facts.md`` §3): real weights go in
``recs`` (``eweight`` is cast to int), ``real-exponential`` needs |w|; one ``minimize_*`` call is
not reproducible even with a fixed seed, so determinism comes from restarts + greedy refinement;
a description length can come back NaN, so every fit is checked with ``isfinite``: a sweep that
turns it NaN is undone (the state before it is kept) and, while no restart is finite, up to
``EXTRA_RESTARTS`` × ``n_restarts`` restarts run.
"""
from __future__ import annotations

import numpy as np

import graph_tool.all as gt

from modgraph.errors import ModgraphError
from modgraph.partition import canonical_labels

__all__ = ["to_graph_tool", "seed_all", "restart_seeds", "fit_blockmodel", "multilevel_args", "modularity",
           "modularity_state", "compact_levels", "EXTRA_RESTARTS"]


def to_graph_tool(n_vertices: int, src, dst, weight=None, *, layer=None):
    """An undirected graph-tool graph with ``weight`` (edge, double) and ``layer`` (vertex, int)."""
    g = gt.Graph(directed=False)
    g.add_vertex(int(n_vertices))
    g.add_edge_list(np.column_stack([np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)]))
    w = g.new_edge_property("double")
    w.a = np.ones(len(src)) if weight is None else np.asarray(weight, dtype=np.float64)
    g.edge_properties["weight"] = w
    if layer is not None:
        lay = g.new_vertex_property("int")
        lay.a = np.asarray(layer, dtype=np.int64)
        g.vertex_properties["layer"] = lay
    return g


def seed_all(seed: int) -> None:
    """Seed graph-tool's and numpy's global RNGs (``seed >= 0``; 0 is a seed like any other)."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    gt.seed_rng(int(seed) + 1)       # gt.seed_rng(0) would mean "seed from the clock"
    np.random.seed((int(seed) + 1) % 2**32)


def restart_seeds(seed: int, n: int) -> list[int]:
    """``n`` distinct derived seeds for the restarts of one fit."""
    return [int(s) for s in np.random.SeedSequence([int(seed), 0x5B4D]).generate_state(n) % (2**31 - 2)]


def compact_levels(bs) -> list[np.ndarray]:
    """Make graph-tool's ``get_bs()`` levels contiguous (empty blocks dropped) and cut the top.

    Level ``l`` of the result labels the blocks of level ``l - 1`` with labels ``0..B_l-1``;
    levels above the first one-block level are dropped.
    """
    levels, prev = [], None
    for b in bs:
        b = np.array(b, dtype=np.int64, copy=True)
        if prev is not None:
            b = b[prev]                          # keep only the blocks that are used below
        prev, inv = np.unique(b, return_inverse=True)
        levels.append(inv.astype(np.int64))
        if prev.size == 1:
            break
    return levels


def multilevel_args(sweeps: int) -> dict:
    """``multilevel_mcmc_args`` of one ``minimize_*`` call: ``sweeps`` merge and MH sweeps.

    graph-tool's default is 10 and 10. Nearly all of a fit's time is one multilevel sweep of
    level 0 (its bisection search over the number of blocks), and that cost is proportional
    to these two counts: on the 90 %-pruned MNIST MLP (1,733 units, 37,834 edges) one fit
    takes 6.9 s at 10 and 3.0 s at 5, with the same description length; on the planted 4:1
    layered graphs (seeds 1-4) both give the same partitions (``docs/methods.md``). Restarts
    and the greedy refinement make up for the shorter search.
    """
    return {"merge_sweeps": int(sweeps), "mh_sweeps": int(sweeps)}


def _state_args(g, *, weighted: bool, pclabel=None, eweight=None) -> dict:
    args = {}
    if weighted:
        args.update(recs=[g.edge_properties["weight"]], rec_types=["real-exponential"])
    if pclabel is not None:
        prop = g.new_vertex_property("int")
        prop.a = np.asarray(pclabel, dtype=np.int64)
        args["pclabel"] = prop
    if eweight is not None:
        args["eweight"] = eweight
    return args


def _refine(state, n_sweeps: int) -> float:
    """Greedy ``multiflip_mcmc_sweep(beta=inf)`` sweeps until the state's entropy stops falling.

    The one refinement loop of every fit here (``BlockState``/``NestedBlockState`` description
    lengths and ``ModularityState``'s entropy alike). A sweep counts as progress when it lowers
    the entropy by more than 1e-9: real moves change these entropies by far more (one
    ``ModularityState`` move by about 1e-3 of an entropy near -200), rounding noise by ~1e-14.
    Returns the entropy of the final state (non-finite as graph-tool gave it, when it did).
    """
    dl = state.entropy()
    for _ in range(n_sweeps):
        state.multiflip_mcmc_sweep(beta=np.inf, niter=10)
        new = state.entropy()
        if not np.isfinite(new) or not new < dl - 1e-9:
            return new
        dl = new
    return dl


#: restarts of fit_blockmodel at most, as a multiple of n_restarts, while no fit is finite
EXTRA_RESTARTS = 4


def _refine_levels(state, n_sweeps: int, nested: bool):
    """:func:`_refine` for a block state, keeping the last state with a finite description length.

    Returns ``(levels, dl)`` of the state after the last sweep, as :func:`_refine` leaves it, except
    when a sweep makes the description length non-finite: then the levels and DL from before that
    sweep (graph-tool 2.45's ``multiflip_mcmc_sweep`` on a ``NestedBlockState`` with layer
    constraints turns the entropy NaN on tiny graphs, e.g. every condensed [4,1,4] net, from a
    finite start). ``(None, nan)`` when no state along the way was finite.
    """
    def snapshot():
        return compact_levels(state.get_bs() if nested else [state.get_blocks().a])

    dl = state.entropy()
    kept = (snapshot(), dl) if np.isfinite(dl) else (None, np.nan)
    for _ in range(n_sweeps):
        state.multiflip_mcmc_sweep(beta=np.inf, niter=10)
        new = state.entropy()
        if not np.isfinite(new):
            return kept
        kept = (snapshot(), new)
        if not new < dl - 1e-9:
            return kept
        dl = new
    return kept


def _same_fit(levels, dl, best, best_dl) -> bool:
    """Same description length (to 1e-9 relative) and the same level-0 partition up to labels."""
    if abs(dl - best_dl) > 1e-9 * max(1.0, abs(best_dl)):
        return False
    a, b = levels[0], best[0]
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    return pairs.shape[0] == a.max() + 1 == b.max() + 1


def fit_blockmodel(g, *, nested: bool, seed: int, weighted: bool = False, pclabel=None,
                   counts=None, n_restarts: int = 3, n_sweeps: int = 20,
                   multilevel_sweeps: int = 5) -> tuple[list[np.ndarray], float]:
    """Best of up to ``n_restarts`` degree-corrected SBM fits of ``g`` by minimum description length.

    Restart ``r`` runs ``minimize_*`` under its own derived seed and refines the result with
    greedy multiflip sweeps; the lowest finite description length is kept. The restarts stop
    early once a restart reproduces the best fit so far (same description length, same level-0
    partition): two starts agreeing is the convergence this determinism rests on.

    Parameters
    ----------
    g : graph_tool.Graph
        From :func:`to_graph_tool`.
    nested : bool
        Nested SBM (``minimize_nested_blockmodel_dl``) or flat (``minimize_blockmodel_dl``).
    weighted : bool
        Model |w| as a real-exponential edge covariate (``recs``).
    pclabel : int array, optional
        Level-0 blocks hold units of one ``pclabel`` value only (e.g. one layer).
    counts : int array, optional
        Edge multiplicities (``eweight``), for block graphs.
    multilevel_sweeps : int
        ``merge_sweeps`` and ``mh_sweeps`` of graph-tool's multilevel merge-split search
        (:func:`multilevel_args`; graph-tool's own default is 10).

    Returns
    -------
    levels : list of int arrays
        Compacted levels (one level for a flat fit).
    dl : float
        The description length of the kept fit (nats).
    """
    if n_restarts < 1:
        raise ValueError(f"n_restarts must be >= 1, got {n_restarts}")
    if multilevel_sweeps < 1:
        raise ValueError(f"multilevel_sweeps must be >= 1, got {multilevel_sweeps}")
    ew = None
    if counts is not None:
        ew = g.new_edge_property("int")
        ew.a = np.asarray(counts, dtype=np.int64)
    args = _state_args(g, weighted=weighted, pclabel=pclabel, eweight=ew)
    minimize = gt.minimize_nested_blockmodel_dl if nested else gt.minimize_blockmodel_dl
    multilevel = multilevel_args(multilevel_sweeps)
    best, best_dl = None, np.inf
    seeds = restart_seeds(seed, EXTRA_RESTARTS * n_restarts)
    for i, s in enumerate(seeds):
        if i >= n_restarts and best is not None:
            break                            # the extra restarts only run while nothing is finite
        seed_all(s)
        state = minimize(g, state_args=args, multilevel_mcmc_args=multilevel)
        levels, dl = _refine_levels(state, n_sweeps, nested)
        del state
        if levels is None:
            continue
        if best is not None and _same_fit(levels, dl, best, best_dl):
            break                            # two starts reached the same optimum: stop early
        if dl < best_dl - 1e-9:
            best, best_dl = levels, dl
    if best is None:
        what = ("nested" if nested else "flat") + " SBM" + (" with real weights" if weighted else " (unweighted)") \
            + (" and layer constraints" if pclabel is not None else "")
        raise ModgraphError(f"every one of {len(seeds)} fits of the {what} on a graph of {g.num_vertices()} "
                            f"vertices and {g.num_edges()} edges returned a non-finite description length "
                            f"(graph-tool 2.45)")
    return best, float(best_dl)


def modularity(g, labels, *, weighted: bool = True) -> float:
    """Newman modularity of ``labels`` on ``g`` (``gt.modularity``, |w| as weight when ``weighted``)."""
    b = g.new_vertex_property("int")
    b.a = np.asarray(labels, dtype=np.int64)
    return float(gt.modularity(g, b, weight=g.edge_properties["weight"] if weighted else None))


def modularity_state(g, *, seed: int) -> np.ndarray:
    """Labels from graph-tool's ``ModularityState`` (unweighted in 2.45): a reference baseline.

    One seeded ``minimize_blockmodel_dl(g, state=ModularityState)`` call, as the issue measured it;
    modgraph's ``modularity`` method uses Leiden instead (weighted, higher Q).
    """
    seed_all(seed)
    state = gt.minimize_blockmodel_dl(g, state=gt.ModularityState)
    return np.unique(np.array(state.b.a, copy=True), return_inverse=True)[1].astype(np.int64)


def best_modularity_partition(g, *, seed: int, n_restarts: int = 5, n_sweeps: int = 20) -> tuple[np.ndarray, float]:
    """The highest-modularity partition of ``g`` found by ``n_restarts`` seeded ``ModularityState`` fits.

    Each restart is ``minimize_blockmodel_dl(g, state=ModularityState)`` under its own derived seed,
    refined by greedy ``multiflip_mcmc_sweep(beta=inf)`` sweeps. Every restart runs (no early stop);
    the kept partition is the one with the highest exact ``gt.modularity`` (unweighted), ties going to
    the lexicographically smallest canonical labelling, so the answer depends on the set of optima the
    restarts reach, not on their order or on graph-tool's internal labels.

    Returns canonical labels (0.. in order of first vertex) and their modularity.
    """
    if n_restarts < 1:
        raise ValueError(f"n_restarts must be >= 1, got {n_restarts}")
    best, best_q = None, -np.inf
    for s in restart_seeds(seed, n_restarts):
        seed_all(s)
        state = gt.minimize_blockmodel_dl(g, state=gt.ModularityState)
        _refine(state, n_sweeps)
        labels = canonical_labels(np.array(state.b.a, copy=True))
        del state
        prop = g.new_vertex_property("int")
        prop.a = labels
        q = round(float(gt.modularity(g, prop)), 10)        # rounded: equal optima compare equal
        if q > best_q or (q == best_q and tuple(labels) < tuple(best)):
            best, best_q = labels, q
    return best, float(best_q)


def blockmodel_dl(g, labels, *, deg_corr: bool = True) -> float:
    """Description length (nats) of ``g`` under a ``BlockState`` fixed at the partition ``labels``."""
    prop = g.new_vertex_property("int")
    prop.a = np.asarray(labels, dtype=np.int64)
    return float(gt.BlockState(g, b=prop, deg_corr=deg_corr).entropy())


def bipartite_dl(n_left: int, n_right: int, left, right, counts, left_labels, right_labels, *,
                 deg_corr: bool = False) -> float:
    """Description length (nats) of a bipartite multigraph under a ``BlockState`` fixed at a partition.

    Vertices ``0..n_left-1`` (left) and ``n_left..n_left+n_right-1`` (right); edge ``i`` joins left
    ``left[i]`` to right ``right[i]`` with multiplicity ``counts[i]`` (an ``int64_t`` ``eweight``).
    Left and right vertices never share a block: ``right_labels`` are shifted past ``left_labels``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 1:
        raise ValueError("bipartite_dl: multiplicities must be >= 1")
    g = gt.Graph(directed=False)
    g.add_vertex(int(n_left) + int(n_right))
    g.add_edge_list(np.column_stack([np.asarray(left, dtype=np.int64),
                                     int(n_left) + np.asarray(right, dtype=np.int64)]))
    w = g.new_edge_property("int64_t")
    w.a = counts
    lb = np.unique(np.asarray(left_labels, dtype=np.int64), return_inverse=True)[1].ravel()
    rb = np.unique(np.asarray(right_labels, dtype=np.int64), return_inverse=True)[1].ravel()
    b = g.new_vertex_property("int")
    b.a = np.concatenate([lb, (lb.max() + 1 if lb.size else 0) + rb])
    dl = float(gt.BlockState(g, b=b, eweight=w, deg_corr=deg_corr).entropy())
    if not np.isfinite(dl):
        raise ModgraphError(f"graph-tool returned a non-finite description length ({dl}) for a bipartite graph")
    return dl
