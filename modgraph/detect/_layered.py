"""The layer-aware step shared by the block models: join within-layer blocks into modules.

On a feed-forward graph edges only join consecutive layers, so a block model's strongest
signal is the layer itself (``ecosystem-facts.md`` §3.3). The block models therefore fit
level-0 blocks that each hold units of one layer (graph-tool's ``pclabel``) and this module
joins those blocks across layers: it maximises modularity over the coarsenings of the blocks.
The modularity of a coarsening equals the modularity of the block graph (blocks as vertices,
edge counts or |w| sums between them, internal edges as self-loops), so Leiden runs on that
small graph. Modularity is assortative: it joins blocks that are densely wired *to each other*,
which is what a module spanning layers is, and it can never return the layers themselves
(a layer has no internal edges, so its modularity contribution is negative).
"""
from __future__ import annotations

import numpy as np

from modgraph.graph import UnitGraph

__all__ = ["block_graph", "merge_blocks"]


def block_graph(src, dst, blocks, weight=None) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The undirected block graph: ``(n_blocks, src, dst, total)``, one edge per block pair.

    ``total`` sums ``weight`` (edge counts when ``None``) over the unit edges between two
    blocks; edges inside a block become a self-loop.
    """
    blocks = np.asarray(blocks, dtype=np.int64)
    n = int(blocks.max()) + 1
    a, b = blocks[np.asarray(src)], blocks[np.asarray(dst)]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    w = np.ones(lo.size) if weight is None else np.asarray(weight, dtype=np.float64)
    key, inv = np.unique(lo * n + hi, return_inverse=True)
    total = np.bincount(inv, weights=w)
    return n, key // n, key % n, total


def merge_blocks(work: UnitGraph, blocks, *, weighted: bool, seed: int) -> np.ndarray:
    """Module of each block: the modularity-maximal coarsening of ``blocks`` (labels per unit)."""
    from modgraph.detect.modularity import leiden

    n, s, d, total = block_graph(work.src, work.dst, blocks, work.weight if weighted else None)
    module_of_block, _ = leiden(n, s, d, total, seed=seed)
    return module_of_block
