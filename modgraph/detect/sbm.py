"""``sbm`` and ``nested-sbm``: degree-corrected stochastic block models fitted by minimum
description length (graph-tool), made layer-aware.

A block model groups units with the same *connection pattern*. On a feed-forward graph the
dominant pattern is the layer (edges only join consecutive layers), so a plain SBM returns the
layers (Peixoto 2014, doi:10.1103/PhysRevX.4.011047 for the nested model; Karrer & Newman 2011,
doi:10.1103/PhysRevE.83.016107 for degree correction). The layer-aware variant (the default):

1. fit the SBM with every level-0 block confined to one layer and one connected component
   (``pclabel``), so blocks are the (layer, module) pieces of the modules (a block spanning two
   disconnected parts is never a module, and small graphs give the SBM too little evidence to
   split them by itself);
2. join blocks across layers into modules by maximising modularity over coarsenings of the
   blocks (:mod:`modgraph.detect._layered`);
3. for ``nested-sbm``, fit a nested SBM to the graph of modules for the levels above.

Determinism: graph-tool 2.45 is not reproducible per call, so each fit is several restarts
(derived seeds), the lowest description length kept, then greedy ``multiflip`` refinement.

What it cannot do: it finds no module that is not denser inside than between (the merge step is
assortative); the flat SBM has a resolution limit of about √N blocks and underfits weak
modules (the nested one does better); with ``weighted=True`` the |w| enter as a real-exponential
covariate, which helps only where weight magnitudes differ between modules; fits cost seconds to
minutes (about 1 GB of memory per process for graph-tool's cache).

Examples
--------
>>> from modgraph.planted import disjoint_mlps
>>> from modgraph.graph import build_unit_graph
>>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
>>> p = sbm(build_unit_graph(net), seed=0)
>>> p.labels.tolist() == truth.tolist(), p.n_modules
(True, 2)
"""
from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import connected_components

from modgraph.detect._registry import register
from modgraph.detect._common import check_seed, prepare, spread
from modgraph.detect._layered import block_graph, merge_blocks
from modgraph.graph import UnitGraph
from modgraph.partition import Hierarchy, Partition

__all__ = ["sbm", "nested_sbm", "layer_component_label"]


def layer_component_label(work: UnitGraph) -> np.ndarray:
    """One label per (layer, connected component): the level-0 block constraint."""
    _, comp = connected_components(work.adjacency(weighted=False), directed=False)
    return np.unique(work.layer * (int(comp.max()) + 1) + comp, return_inverse=True)[1]


def _fit(work: UnitGraph, *, nested: bool, seed: int, weighted: bool, layer_aware: bool,
         n_restarts: int, n_sweeps: int, multilevel_sweeps: int):
    from modgraph.detect import _gt

    g = _gt.to_graph_tool(work.n_units, work.src, work.dst, work.weight, layer=work.layer)
    pclabel = layer_component_label(work) if layer_aware else None
    levels, dl = _gt.fit_blockmodel(g, nested=nested, seed=seed, weighted=weighted, pclabel=pclabel,
                                    n_restarts=n_restarts, n_sweeps=n_sweeps,
                                    multilevel_sweeps=multilevel_sweeps)
    return g, levels, dl


def _stats(g, labels, dl, levels, **extra) -> dict:
    from modgraph.detect import _gt

    return {"description_length": dl, "n_blocks": int(levels[0].max()) + 1,
            "modularity": _gt.modularity(g, labels), **extra}


@register("sbm")
def sbm(graph: UnitGraph, *, seed: int = 1, weighted: bool = False, layer_aware: bool = True,
        n_restarts: int = 3, n_sweeps: int = 20, multilevel_sweeps: int = 5,
        condense: bool = True) -> Partition:
    """Modules from a degree-corrected SBM fitted by minimum description length.

    Parameters
    ----------
    graph : UnitGraph
        Possibly uncondensed; units removed by condensation are labelled −1.
    seed : int
        Same seed, same labels.
    weighted : bool
        Also model |w| (graph-tool ``recs``, ``real-exponential``).
    layer_aware : bool
        Blocks confined to one layer, then joined across layers (default). ``False`` returns
        the plain SBM's blocks, which on a layered graph are mostly the layers.
    n_restarts, n_sweeps : int
        Independent fits (the lowest description length is kept) and greedy refinement sweeps.
    multilevel_sweeps : int
        Merge and Metropolis-Hastings sweeps of graph-tool's multilevel search per fit
        (graph-tool's default 10; 5 halves the time of a fit, see ``docs/methods.md``).
    condense : bool
        Remove dead units first (Neural Sculpting §5.1).

    Returns
    -------
    Partition
        ``stats``: ``description_length`` (nats, of the kept SBM fit), ``n_blocks``,
        ``modularity`` (``gt.modularity`` with |w|).
    """
    seed = check_seed(seed)
    if layer_aware and isinstance(graph, UnitGraph):
        graph.require("sbm (layer_aware=true)")
    work = prepare(graph, condense=condense)
    g, levels, dl = _fit(work, nested=False, seed=seed, weighted=weighted, layer_aware=layer_aware,
                         n_restarts=n_restarts, n_sweeps=n_sweeps, multilevel_sweeps=multilevel_sweeps)
    labels = levels[0]
    if layer_aware:
        labels = merge_blocks(work, labels, weighted=weighted, seed=seed)[labels]
    stats = _stats(g, labels, dl, levels, weighted=weighted, layer_aware=layer_aware)
    return Partition(spread(graph, work, labels), method="sbm", seed=seed, stats=stats)


def _upper_levels(work: UnitGraph, modules: np.ndarray, *, seed: int, n_restarts: int, n_sweeps: int,
                  multilevel_sweeps: int):
    """Levels above the modules: a nested SBM of the module graph (edge counts as multiplicities)."""
    from modgraph.detect import _gt

    n, s, d, counts = block_graph(work.src, work.dst, modules)
    if n == 1:
        return []
    g = _gt.to_graph_tool(n, s, d)
    levels, _ = _gt.fit_blockmodel(g, nested=True, seed=seed, counts=counts.astype(np.int64),
                                   n_restarts=n_restarts, n_sweeps=n_sweeps, multilevel_sweeps=multilevel_sweeps)
    return _coarsening_steps(levels)


def _coarsening_steps(levels) -> list[np.ndarray]:
    """The levels without those that merge nothing, ending in one block."""
    proj = np.arange(levels[0].size)
    kept, out = proj, []
    for lev in [*levels, np.zeros(int(levels[-1].max()) + 1, dtype=np.int64)]:
        proj = lev[proj]
        if proj.max() < kept.max():                      # a real merge: one more level
            _, first = np.unique(kept, return_index=True)
            out.append(np.unique(proj, return_inverse=True)[1][first])
            kept = proj
    return out


@register("nested-sbm")
def nested_sbm(graph: UnitGraph, *, seed: int = 1, weighted: bool = False, layer_aware: bool = True,
               n_restarts: int = 3, n_sweeps: int = 20, multilevel_sweeps: int = 5,
               condense: bool = True) -> Hierarchy:
    """A hierarchy from the nested degree-corrected SBM (minimum description length).

    Parameters are those of :func:`sbm`. Layer-aware (default): level 0 labels units with
    within-layer blocks (level 0 of a nested SBM with ``pclabel``), level 1 joins blocks into
    modules (``module_level`` = 1), and the levels above come from a nested SBM of the module
    graph, up to one block. Otherwise the nested SBM's own levels, with ``module_level`` = 0.

    Returns
    -------
    Hierarchy
        ``stats``: ``description_length`` (nats, of the unit-level nested fit), ``n_blocks``,
        ``modularity`` (of the modules, ``gt.modularity`` with |w|).
    """
    seed = check_seed(seed)
    if layer_aware and isinstance(graph, UnitGraph):
        graph.require("nested-sbm (layer_aware=true)")
    work = prepare(graph, condense=condense)
    g, levels, dl = _fit(work, nested=True, seed=seed, weighted=weighted, layer_aware=layer_aware,
                         n_restarts=n_restarts, n_sweeps=n_sweeps, multilevel_sweeps=multilevel_sweeps)
    module_level = 0
    if layer_aware:
        blocks = levels[0]
        module_of_block = merge_blocks(work, blocks, weighted=weighted, seed=seed)
        up = _upper_levels(work, module_of_block[blocks], seed=seed, n_restarts=n_restarts, n_sweeps=n_sweeps,
                           multilevel_sweeps=multilevel_sweeps)
        levels, module_level = [blocks, module_of_block, *up], 1
    modules = Hierarchy.from_levels(levels, module_level=module_level).labels
    stats = _stats(g, modules, dl, levels, weighted=weighted, layer_aware=layer_aware, n_levels=len(levels))
    full = [spread(graph, work, levels[0]), *levels[1:]]
    return Hierarchy.from_levels(full, module_level=module_level, method="nested-sbm", seed=seed, stats=stats)
