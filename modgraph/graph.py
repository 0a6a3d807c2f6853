"""The graph of units: every unit of every layer, every surviving weight an edge.

``build_unit_graph`` turns a :class:`~modgraph.network.LayeredNetwork` into a
:class:`UnitGraph`; ``condense`` removes dead units (Neural Sculpting §5.1) and
``drop_isolated`` removes only degree-0 units (the clusterability papers' cleaning).
Both keep the map back to ``(layer, index)`` of the original network. numpy/scipy only.

Examples
--------
>>> import numpy as np
>>> from modgraph.network import Layer, LayeredNetwork
>>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0, 0.0], [0.0, 0.0]])),
...                       Layer.from_dense(np.array([[2.0, 0.0]]), activation="identity")])
>>> g = build_unit_graph(net)
>>> g.n_units, g.n_edges
(5, 2)
>>> c = condense(g)
>>> [(int(l), int(i)) for l, i in zip(c.layer, c.index)]
[(0, 0), (1, 0), (2, 0)]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from modgraph.dag import DagNetwork
from modgraph.errors import ModgraphError
from modgraph.network import LayeredNetwork

__all__ = ["UnitGraph", "build_unit_graph", "condense", "drop_isolated"]


@dataclass(frozen=True, eq=False)
class UnitGraph:
    """Units and surviving weights of a layered network.

    Units are numbered ``0 .. n_units-1`` in layer order (inputs first). Edges run from
    a unit of layer ``l`` to a unit of layer ``l + 1``.

    Attributes
    ----------
    layer, index : int arrays (n_units,)
        The unit's layer (0 = inputs, ``n_layers - 1`` = outputs) and its index inside
        that layer *of the original network*: the map back survives condensation.
    src, dst : int arrays (n_edges,)
        Edge endpoints (unit numbers of this graph); ``layer[dst] == layer[src] + 1``.
    value : float array (n_edges,)
        The signed weight; ``weight`` is ``|value|``.
    widths : tuple of int
        Units per layer of the original network.
    """

    layer: np.ndarray
    index: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    value: np.ndarray
    widths: tuple[int, ...]

    @property
    def weight(self) -> np.ndarray:
        """|w| per edge."""
        return np.abs(self.value)

    @property
    def n_units(self) -> int:
        return int(self.layer.size)

    @property
    def n_edges(self) -> int:
        return int(self.src.size)

    @property
    def n_layers(self) -> int:
        """Number of unit layers (inputs and outputs included)."""
        return len(self.widths)

    @property
    def original_id(self) -> np.ndarray:
        """Each unit's number in the full (uncondensed) graph of the original network."""
        offsets = np.concatenate([[0], np.cumsum(self.widths)[:-1]])
        return offsets[self.layer] + self.index

    def units_in_layer(self, l: int) -> np.ndarray:
        """Unit numbers of layer ``l`` (in index order)."""
        return np.flatnonzero(self.layer == l)

    def adjacency(self, *, weighted: bool = True, directed: bool = False) -> sp.csr_matrix:
        """Adjacency matrix (n_units, n_units); symmetric unless ``directed``."""
        w = self.weight if weighted else np.ones(self.n_edges)
        a = sp.csr_matrix((w, (self.src, self.dst)), shape=(self.n_units, self.n_units))
        return a if directed else (a + a.T).tocsr()

    def layer_block(self, l: int, *, weighted: bool = True) -> sp.csr_matrix:
        """Edges from layer ``l`` to ``l + 1`` as a (units of l+1, units of l) matrix."""
        rows, cols = self.units_in_layer(l + 1), self.units_in_layer(l)
        pos = np.full(self.n_units, -1)
        pos[rows] = np.arange(rows.size)
        pos[cols] = np.arange(cols.size)
        sel = self.layer[self.src] == l
        w = self.weight[sel] if weighted else np.ones(int(sel.sum()))
        return sp.csr_matrix((w, (pos[self.dst[sel]], pos[self.src[sel]])), shape=(rows.size, cols.size))

    def degrees(self) -> tuple[np.ndarray, np.ndarray]:
        """(in-degree, out-degree) per unit, counting edges."""
        return (np.bincount(self.dst, minlength=self.n_units), np.bincount(self.src, minlength=self.n_units))

    def to_full_labels(self, labels) -> np.ndarray:
        """Spread labels of this graph's units over all units of the original network (−1 = removed)."""
        full = np.full(int(sum(self.widths)), -1, dtype=np.int64)
        full[self.original_id] = np.asarray(labels)
        return full

    def subgraph(self, keep) -> "UnitGraph":
        """The graph induced by the units where ``keep`` is true (numbering compacted, map kept)."""
        keep = np.asarray(keep, dtype=bool)
        new_id = np.cumsum(keep) - 1
        sel = keep[self.src] & keep[self.dst]
        return UnitGraph(self.layer[keep], self.index[keep], new_id[self.src[sel]], new_id[self.dst[sel]],
                         self.value[sel], self.widths)


def build_unit_graph(network: LayeredNetwork | DagNetwork) -> UnitGraph:
    """Every unit (inputs and outputs included) a vertex, every stored weight an edge.

    A :class:`~modgraph.dag.DagNetwork` that is a chain is its LayeredNetwork here (the same
    graph, bit for bit); other DAGs are refused until the unit graph handles them (issue 14).
    """
    if isinstance(network, DagNetwork):
        if not network.is_chain:
            raise ModgraphError("the unit graph of a DAG (conv, merge or re-index ops) is not built yet; "
                                "modgraph.dag_edges.unit_edges(net) gives its typed edges")
        network = network.to_layered()
    widths = network.widths
    offsets = np.concatenate([[0], np.cumsum(widths)])
    layer = np.repeat(np.arange(len(widths)), widths)
    index = np.concatenate([np.arange(w) for w in widths])
    srcs, dsts, vals = [], [], []
    for l, lay in enumerate(network.layers):
        w = lay.weight
        rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
        srcs.append(offsets[l] + w.indices.astype(np.int64))
        dsts.append(offsets[l + 1] + rows)
        vals.append(np.asarray(w.data, dtype=np.float64))
    return UnitGraph(layer, index, np.concatenate(srcs), np.concatenate(dsts), np.concatenate(vals),
                     tuple(int(w) for w in widths))


def _reach(frm: np.ndarray, to: np.ndarray, seeds: np.ndarray, edge_groups) -> np.ndarray:
    """Units reachable from ``seeds`` along edges frm→to, sweeping the edge groups in order."""
    hit = seeds.copy()
    for e in edge_groups:
        hit[to[e][hit[frm[e]]]] = True
    return hit


def condense(graph: UnitGraph) -> UnitGraph:
    """Remove units with no path from an input or none to an output; outputs always stay.

    This is the fixed point of Neural Sculpting's condensation (drop inputs with
    out-degree 0 and hidden units with in- or out-degree 0, repeat), computed in one
    forward and one backward sweep over the layers.
    """
    last = graph.n_layers - 1
    by_layer = [np.flatnonzero(graph.layer[graph.src] == l) for l in range(last)]
    from_input = _reach(graph.src, graph.dst, graph.layer == 0, by_layer)
    to_output = _reach(graph.dst, graph.src, graph.layer == last, by_layer[::-1])
    keep = (from_input & to_output) | (graph.layer == last)
    return graph.subgraph(keep)


def drop_isolated(graph: UnitGraph) -> UnitGraph:
    """Remove only units with no edge at all (the clusterability papers' cleaning)."""
    deg_in, deg_out = graph.degrees()
    return graph.subgraph((deg_in + deg_out) > 0)
