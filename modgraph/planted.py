"""Graphs and networks with a known (planted) module structure, for tests and benchmarks.

- :func:`planted_layered_graph`: a layered unit graph whose modules span every layer; edges
  join consecutive layers only, with within-module density ``ratio`` times the between-module
  density (a layered planted-partition model).
- :func:`disjoint_mlps`: one network made of fully connected sub-MLPs with no edge between them.
- :func:`random_layered_graph`: the unstructured layered graph of the benchmarks (each unit has
  ``fan_in`` random in-edges from the previous layer).

Examples
--------
>>> g, truth = planted_layered_graph(n_layers=3, layer_width=6, n_modules=2, ratio=10.0,
...                                  mean_degree=4.0, seed=0)
>>> g.n_units, truth.tolist()[:6]
(18, [0, 0, 0, 1, 1, 1])
>>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
>>> net.widths, truth.tolist()[:6]
((6, 8, 4), [0, 0, 0, 1, 1, 1])
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from modgraph.graph import UnitGraph, build_unit_graph
from modgraph.network import Layer, LayeredNetwork

__all__ = ["planted_layered_graph", "disjoint_mlps", "random_layered_graph"]


def _module_of_units(n_layers: int, layer_width: int, n_modules: int) -> np.ndarray:
    """Module of each unit: every layer split into ``n_modules`` contiguous, near-equal runs."""
    one = np.arange(layer_width) * n_modules // layer_width
    return np.tile(one, n_layers)


def planted_layered_graph(*, n_layers: int, layer_width: int, n_modules: int, ratio: float,
                          mean_degree: float = 10.0, weights: str = "normal",
                          seed: int) -> tuple[UnitGraph, np.ndarray]:
    """A layered graph with ``n_modules`` planted modules, each spanning all layers.

    Between consecutive layers an edge joins two units with probability ``p_in`` when they
    belong to the same module and ``p_in / ratio`` otherwise; ``p_in`` is chosen so that a
    unit has ``mean_degree / 2`` expected edges to the next layer (about ``mean_degree``
    edges in all for a hidden unit). Weights are unrelated to modules: signed standard normal
    (``weights="normal"``) or ±1 (``weights="sign"``, a pure block model: |w| all equal).

    Returns
    -------
    graph : UnitGraph
    truth : int array (n_units,)
        The planted module of each unit.
    """
    if weights not in ("normal", "sign"):
        raise ValueError(f"unknown weights {weights!r}; choose one of normal, sign")
    if ratio <= 0 or n_modules < 1 or layer_width < n_modules or n_layers < 2:
        raise ValueError("need ratio > 0, n_modules >= 1, layer_width >= n_modules and n_layers >= 2")
    rng = np.random.default_rng(seed)
    module = _module_of_units(1, layer_width, n_modules)
    same = module[:, None] == module[None, :]
    s_in = same.sum() / layer_width
    p_in = (mean_degree / 2) / (s_in + (layer_width - s_in) / ratio)
    prob = np.where(same, p_in, p_in / ratio)
    if p_in > 1:
        raise ValueError(f"mean_degree {mean_degree} is too high for layer width {layer_width} at ratio {ratio}")
    layers = []
    for l in range(n_layers - 1):
        mask = rng.random((layer_width, layer_width)) < prob
        values = rng.standard_normal(mask.shape)
        w = np.where(mask, values if weights == "normal" else np.sign(values), 0.0)
        layers.append(Layer.from_dense(w, mask=mask, activation="identity" if l == n_layers - 2 else "relu"))
    graph = build_unit_graph(LayeredNetwork(layers))
    return graph, _module_of_units(n_layers, layer_width, n_modules)


def disjoint_mlps(widths, *, n_modules: int, seed: int = 0) -> tuple[LayeredNetwork, np.ndarray]:
    """``n_modules`` fully connected MLPs of ``widths`` side by side, no edge between them.

    Unit ``i`` of layer ``l`` belongs to module ``i // widths[l]``. Weights are signed,
    standard normal (``seed``).
    """
    rng = np.random.default_rng(seed)
    layers = []
    for l in range(len(widths) - 1):
        blocks = [rng.standard_normal((widths[l + 1], widths[l])) for _ in range(n_modules)]
        w = sp.block_diag(blocks, format="csr")
        layers.append(Layer.from_dense(w.toarray(), mask=w.toarray() != 0,
                                       activation="identity" if l == len(widths) - 2 else "relu"))
    truth = np.concatenate([np.repeat(np.arange(n_modules), w) for w in widths])
    return LayeredNetwork(layers), truth


def random_layered_graph(*, n_layers: int, layer_width: int, fan_in: int, seed: int) -> UnitGraph:
    """Each unit of layers 1.. gets ``fan_in`` random in-edges from the previous layer.

    Sources are drawn with replacement and repeats dropped, so a unit has ``fan_in`` in-edges
    or slightly fewer. Weights are signed standard normal.
    """
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(n_layers - 1):
        rows = np.repeat(np.arange(layer_width), fan_in)
        cols = rng.integers(0, layer_width, rows.size)
        pairs = np.unique(rows * layer_width + cols)
        w = sp.csr_matrix((rng.standard_normal(pairs.size), (pairs // layer_width, pairs % layer_width)),
                          shape=(layer_width, layer_width))
        layers.append(Layer(w, np.zeros(layer_width)))
    return build_unit_graph(LayeredNetwork(layers))
