"""``modularity``: weighted modularity maximisation with igraph's Leiden algorithm (a baseline).

Modularity (Newman & Girvan 2004, doi:10.1103/PhysRevE.69.026113) rewards partitions with more
edge weight inside groups than a degree-preserving random graph would put there. It is kept as
a **baseline with known limits**: it has a resolution limit (Fortunato & Barthélemy 2007,
doi:10.1073/pnas.0605965104: modules smaller than about √(2m) edges get merged), it finds
"modules" in random graphs, and on a layered feed-forward graph without modules it cuts the stack
into runs of consecutive layers. Leiden (Traag, Waltman & van Eck 2019,
doi:10.1038/s41598-019-41695-z) is used because, unlike graph-tool 2.45's ``ModularityState``,
it is weighted, and it reached a higher Q faster (``ecosystem-facts.md`` §4). Every result is
scored with graph-tool's ``gt.modularity`` (``stats["modularity"]``), the common yardstick.

Examples
--------
>>> from modgraph.planted import disjoint_mlps
>>> from modgraph.graph import build_unit_graph
>>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
>>> p = modularity(build_unit_graph(net), seed=0)
>>> p.labels.tolist() == truth.tolist(), p.n_modules
(True, 2)
"""
from __future__ import annotations

import random

import igraph as ig
import numpy as np

from modgraph.detect._registry import register
from modgraph.detect._common import check_seed, prepare, spread
from modgraph.graph import UnitGraph
from modgraph.partition import Partition, canonical_labels

__all__ = ["modularity", "leiden", "LEIDEN_MAX_PASSES"]


#: Leiden passes per run at most: each pass continues from the last one's partition, and a run
#: ends as soon as a pass leaves the partition unchanged (usually after 2-3 passes)
LEIDEN_MAX_PASSES = 100


def leiden(n_vertices: int, src, dst, weight=None, *, seed: int, resolution: float = 1.0,
           n_restarts: int = 3, max_passes: int = LEIDEN_MAX_PASSES) -> tuple[np.ndarray, float]:
    """Leiden modularity maximisation on an undirected (multi)graph given by edge arrays.

    Self-loops are allowed (a block graph's internal edges). Returns canonical labels and
    igraph's modularity of the best of ``n_restarts`` runs (run ``r`` draws from
    ``random.Random((seed, r))``; Python's global RNG is left untouched).

    Each run is a loop of single Leiden passes (``n_iterations=1``, continuing from the previous
    partition) that stops when a pass changes nothing, or after ``max_passes``. igraph 1.0's own
    "until stable" mode (``n_iterations=-1``) never returns on some graphs, e.g. a weighted path
    of 6 vertices (``tests/modgraph/detect/test_modularity.py``), although one pass there already
    gives a partition that the next pass leaves unchanged.
    """
    if n_restarts < 1:
        raise ValueError(f"n_restarts must be >= 1, got {n_restarts}")
    if max_passes < 1:
        raise ValueError(f"max_passes must be >= 1, got {max_passes}")
    # numpy arrays, not lists: igraph reads them directly, and 15.5M edges as Python lists of ints
    # and floats cost ~2.5 GB (a ResNet-50's split view, benchmarks/load_resnet.py --analyze)
    g = ig.Graph(n=int(n_vertices), edges=np.column_stack([np.asarray(src, np.int64), np.asarray(dst, np.int64)]),
                 directed=False)
    w = None if weight is None else np.ascontiguousarray(weight, dtype=np.float64)
    best, best_q = None, -np.inf
    try:
        for r in range(n_restarts):
            ig.set_random_number_generator(random.Random(f"{seed}-{r}"))
            membership = None
            for _ in range(max_passes):
                found = g.community_leiden(objective_function="modularity", weights=w, resolution=resolution,
                                           n_iterations=1, initial_membership=membership)
                same = membership is not None and np.array_equal(canonical_labels(found.membership),
                                                                  canonical_labels(membership))
                membership = found.membership
                if same:
                    break
            q = g.modularity(membership, weights=w, resolution=resolution)
            if q > best_q + 1e-12:
                best, best_q = membership, q
    finally:
        ig.set_random_number_generator(random)
    return canonical_labels(best), float(best_q)


@register("modularity")
def modularity(graph: UnitGraph, *, seed: int = 1, weighted: bool = True, resolution: float = 1.0,
               n_restarts: int = 3, condense: bool = True) -> Partition:
    """Modules maximising (weighted) modularity, found by Leiden; a baseline.

    Parameters
    ----------
    graph : UnitGraph
        Possibly uncondensed; units removed by condensation are labelled −1.
    seed : int
        Same seed, same labels.
    weighted : bool
        Use |w| as edge weights (default) or count edges.
    resolution : float
        Modularity's resolution γ (1 = Newman's modularity; larger gives smaller modules).
    n_restarts : int
        Leiden runs; the one with the highest modularity is kept.
    condense : bool
        Remove dead units first (Neural Sculpting §5.1).

    Notes
    -----
    A baseline with known resolution limits (see the module docstring): it cannot see modules
    below about √(2m) edges, it reports modules in structureless graphs, and on a layered graph
    it prefers runs of consecutive layers to modules that are not denser than that.
    """
    from modgraph.detect import _gt

    seed = check_seed(seed)
    work = prepare(graph, condense=condense)
    w = work.weight if weighted else None
    labels, _ = leiden(work.n_units, work.src, work.dst, w, seed=seed, resolution=resolution,
                       n_restarts=n_restarts)
    g = _gt.to_graph_tool(work.n_units, work.src, work.dst, work.weight)
    q = _gt.modularity(g, labels, weighted=weighted)
    stats = {"modularity": q, "weighted": weighted, "resolution": resolution, "n_units_used": work.n_units}
    return Partition(spread(graph, work, labels), method="modularity", seed=seed, stats=stats)
