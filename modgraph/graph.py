"""The graph of units: every unit of every layer (or group), every surviving weight an edge.

``build_unit_graph`` turns a :class:`~modgraph.network.LayeredNetwork` or a
:class:`~modgraph.dag.DagNetwork` into a :class:`UnitGraph` (for a DAG in one of the views
``split``, ``coupled``, ``filan``; docs/dag.md); ``condense`` removes dead units (Neural
Sculpting §5.1) and ``drop_isolated`` removes only degree-0 units (the clusterability papers'
cleaning). Both keep the map back to the original units. numpy/scipy only.

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

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from modgraph.dag import DagNetwork
from modgraph.dag_edges import EDGE_NORMS, EDGE_TYPES, EdgeBlocks, edge_blocks
from modgraph.errors import ModgraphError
from modgraph.network import LayeredNetwork

__all__ = ["UnitGraph", "build_unit_graph", "condense", "drop_isolated", "VIEWS", "propagate"]

#: The unit graphs of a DagNetwork (docs/dag.md, "Views").
VIEWS = ("split", "coupled", "filan")


_REQUIRED = object()


class _EdgeColumn:
    """A UnitGraph edge array that a block-backed graph lists on first read (then keeps)."""

    def __init__(self, default=_REQUIRED):
        self.default = default

    def __set_name__(self, owner, name):
        self.name, self.slot = name, "_" + name

    def __get__(self, obj, owner=None):
        if obj is None:
            if self.default is _REQUIRED:
                raise AttributeError(self.name)          # a dataclass field without a default
            return self.default
        d = obj.__dict__
        if d.get(self.slot) is None and d.get("blocks") is not None:
            obj._list_edges()
        return d[self.slot]

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value


@dataclass(frozen=True, eq=False)
class UnitGraph:
    """Units and surviving weights of a network.

    Units are numbered ``0 .. n_units-1``. For a chain (``group is None``, the
    :class:`~modgraph.network.LayeredNetwork` case) they come in layer order (inputs first) and
    edges run from a unit of layer ``l`` to a unit of layer ``l + 1``. For a DAG view (``group``
    set) every unit belongs to a unit group of the view, ``layer`` is its group's depth (the
    longest path from the input in the group DAG, so ``layer[dst] > layer[src]`` on every edge of
    a layered view), and edges may skip layers (residual Adds): :attr:`is_consecutive` says
    whether they do not. The ``coupled`` view is not layered (``layered`` false): its units span
    several groups and its edges may run in any direction.

    Attributes
    ----------
    layer, index : int arrays (n_units,)
        The unit's layer (0 = inputs) and its index inside its layer (chain) or group (DAG: the
        channel) *of the original network*: the map back survives condensation.
    src, dst : int arrays (n_edges,)
        Edge endpoints (unit numbers of this graph).
    value : float array (n_edges,)
        The signed weight for a chain; the edge norm (>= 0) of a DAG's edge. ``weight`` is ``|value|``.
    widths : tuple of int
        Units per layer of the original network (of the full view graph for a DAG).
    group : int array (n_units,) or None
        A DAG view's unit group of each unit (index into ``group_names``); None for a chain.
    group_names, group_kinds, group_ops : tuples of str, or None
        Per group of the view: name, kind (input | conv | dense | merge | output) and op type.
    edge_type : int8 array (n_edges,) or None
        Index into :data:`modgraph.dag_edges.EDGE_TYPES` (None for a chain: all ``dense``).
    orig : int array (n_units,) or None
        Each unit's number in the full view graph (None for a chain: computed from ``widths``).
    view : str
        ``chain``, ``split``, ``coupled`` or ``filan``.
    layered : bool
        False for a coupled view with merged units: layer-aware methods refuse it.
    edge_norm : str
        The reduction of kernel slices that made the weights (``l1`` for a chain).
    blocks : EdgeBlocks or None
        The split view of a DAG keeps its edges as :class:`~modgraph.dag_edges.EdgeBlocks` (one
        matrix per weighted group, about 4 bytes per edge) and lists ``src``, ``dst``, ``value``
        and ``edge_type`` on first read; ``n_edges`` and :meth:`edge_counts` never list them.
        None for every other graph (and for a graph made with ``replace``).
    """

    layer: np.ndarray
    index: np.ndarray
    src: np.ndarray = _EdgeColumn()
    dst: np.ndarray = _EdgeColumn()
    value: np.ndarray = _EdgeColumn()
    widths: tuple[int, ...]
    group: np.ndarray | None = None
    group_names: tuple[str, ...] | None = None
    group_kinds: tuple[str, ...] | None = None
    group_ops: tuple[str, ...] | None = None
    edge_type: np.ndarray | None = _EdgeColumn(None)
    orig: np.ndarray | None = None
    view: str = "chain"
    layered: bool = True
    edge_norm: str = "l1"
    blocks: EdgeBlocks | None = field(default=None, init=False, repr=False)

    @classmethod
    def _from_blocks(cls, blocks: EdgeBlocks, **fields) -> "UnitGraph":
        g = cls(src=None, dst=None, value=None, edge_type=None, **fields)
        object.__setattr__(g, "blocks", blocks)
        return g

    def _list_edges(self) -> None:
        e = self.blocks.edges(nnz=False)
        for name, arr in (("_src", e.src), ("_dst", e.dst), ("_value", e.weight), ("_edge_type", e.type)):
            self.__dict__[name] = arr

    def edge_counts(self) -> np.ndarray:
        """Edges per type (:data:`~modgraph.dag_edges.EDGE_TYPES` order; a chain's are all ``dense``)."""
        if self.__dict__.get("_src") is None and self.blocks is not None:
            return self.blocks.counts_by_type()
        if self.edge_type is None:
            return np.bincount(np.full(self.n_edges, 1), minlength=len(EDGE_TYPES))
        return np.bincount(self.edge_type, minlength=len(EDGE_TYPES))

    @property
    def weight(self) -> np.ndarray:
        """|w| per edge."""
        return np.abs(self.value)

    @property
    def n_units(self) -> int:
        return int(self.layer.size)

    @property
    def n_edges(self) -> int:
        if self.__dict__.get("_src") is None and self.blocks is not None:
            return self.blocks.n_edges
        return int(self.src.size)

    @property
    def n_layers(self) -> int:
        """Number of unit layers (inputs and outputs included)."""
        return len(self.widths)

    @property
    def is_dag(self) -> bool:
        """True for a view of a DagNetwork (units carry a group), False for a chain."""
        return self.group is not None

    @property
    def is_consecutive(self) -> bool:
        """True iff the graph is layered and every edge joins layer l to layer l + 1 (a chain of layers)."""
        if self.group is None:
            return True
        return self.layered and bool(np.all(self.layer[self.dst] == self.layer[self.src] + 1))

    @property
    def original_id(self) -> np.ndarray:
        """Each unit's number in the full (uncondensed) graph of the original network."""
        if self.orig is not None:
            return self.orig
        offsets = np.concatenate([[0], np.cumsum(self.widths)[:-1]])
        return offsets[self.layer] + self.index

    @property
    def unit_group(self) -> np.ndarray:
        """The group of each unit (for a chain: its layer)."""
        return self.layer if self.group is None else self.group

    def unit_names(self) -> list[str]:
        """``"{group}:{k}"`` per unit (a chain's groups are ``input``, ``layer1`` … as in DagNetwork)."""
        if self.group is None:
            return [("input" if l == 0 else f"layer{l}") + f":{i}" for l, i in zip(self.layer.tolist(),
                                                                                   self.index.tolist())]
        names = self.group_names
        return [f"{names[g]}:{i}" for g, i in zip(self.group.tolist(), self.index.tolist())]

    def units_in_layer(self, l: int) -> np.ndarray:
        """Unit numbers of layer ``l`` (in index order)."""
        return np.flatnonzero(self.layer == l)

    def _kind_mask(self, kind: str) -> np.ndarray:
        kinds = np.array([k == kind for k in self.group_kinds] or [False])
        return kinds[self.group]

    def input_units(self) -> np.ndarray:
        """The input units (layer 0 of a chain; the units of ``input`` groups of a DAG view)."""
        return self.units_in_layer(0) if self.group is None else np.flatnonzero(self._kind_mask("input"))

    def output_units(self) -> np.ndarray:
        """The output units (the last layer of a chain; the units of ``output`` groups of a DAG view)."""
        if self.group is None:
            return self.units_in_layer(self.n_layers - 1)
        return np.flatnonzero(self._kind_mask("output"))

    def require(self, method: str) -> None:
        """Raise a clear error when ``method`` needs a layered graph and this is not."""
        if not self.layered:
            raise ModgraphError(f"{method} is layer-aware and the {self.view} view is not layered (a residual "
                                "stream is one unit across the groups it joins); use --view split, or a "
                                "method that ignores layers (modularity, spectral, sbm with layer_aware=false)")

    def adjacency(self, *, weighted: bool = True, directed: bool = False) -> sp.csr_matrix:
        """Adjacency matrix (n_units, n_units); symmetric unless ``directed``."""
        w = self.weight if weighted else np.ones(self.n_edges)
        a = sp.csr_matrix((w, (self.src, self.dst)), shape=(self.n_units, self.n_units))
        return a if directed else (a + a.T).tocsr()

    def layer_block(self, l: int, *, weighted: bool = True, to: int | None = None) -> sp.csr_matrix:
        """Edges from layer ``l`` to layer ``to`` (default ``l + 1``) as a (units of to, units of l) matrix."""
        to = l + 1 if to is None else int(to)
        rows, cols = self.units_in_layer(to), self.units_in_layer(l)
        pos = np.full(self.n_units, -1)
        pos[rows] = np.arange(rows.size)
        pos[cols] = np.arange(cols.size)
        sel = self.layer[self.src] == l
        if self.group is not None:                  # a DAG's edges from layer l may end in any deeper layer
            sel &= self.layer[self.dst] == to
        w = self.weight[sel] if weighted else np.ones(int(sel.sum()))
        return sp.csr_matrix((w, (pos[self.dst[sel]], pos[self.src[sel]])), shape=(rows.size, cols.size))

    def layer_links(self) -> dict[int, list[int]]:
        """Per layer ``m``, the layers with an edge into it, ascending (``{m: [m - 1]}`` for a chain).

        >>> import numpy as np
        >>> from modgraph.network import Layer, LayeredNetwork
        >>> build_unit_graph(LayeredNetwork([Layer.from_dense(np.ones((2, 2)))] * 2)).layer_links()
        {1: [0], 2: [1]}
        """
        if self.group is None:
            return {m: [m - 1] for m in range(1, self.n_layers)}
        pairs = np.unique(np.stack([self.layer[self.dst], self.layer[self.src]]), axis=1) if self.n_edges else \
            np.zeros((2, 0), np.int64)
        links: dict[int, list[int]] = {}
        for m, k in pairs.T.tolist():
            links.setdefault(int(m), []).append(int(k))
        return links

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
        if keep.size == self.n_units and keep.all():
            return self                                  # nothing removed: the same (immutable) graph
        new_id = np.cumsum(keep) - 1
        sel = keep[self.src] & keep[self.dst]
        if self.group is None:
            return UnitGraph(self.layer[keep], self.index[keep], new_id[self.src[sel]], new_id[self.dst[sel]],
                             self.value[sel], self.widths)
        return replace(self, layer=self.layer[keep], index=self.index[keep], src=new_id[self.src[sel]],
                       dst=new_id[self.dst[sel]], value=self.value[sel], group=self.group[keep],
                       edge_type=self.edge_type[sel], orig=self.original_id[keep])

    def with_edges(self, src, dst, value, edge_type=None) -> "UnitGraph":
        """The same units with other edges (``edge_type`` kept per edge when given)."""
        if self.group is None:
            return UnitGraph(self.layer, self.index, src, dst, value, self.widths)
        if edge_type is None:
            edge_type = np.zeros(np.asarray(src).size, np.int8)
        return replace(self, src=src, dst=dst, value=value, edge_type=edge_type)


def build_unit_graph(network: LayeredNetwork | DagNetwork, *, view: str = "split",
                     edge_norm: str | None = None) -> UnitGraph:
    """Every unit (inputs and outputs included) a vertex, every stored weight an edge.

    Parameters
    ----------
    network : LayeredNetwork or DagNetwork
        A DagNetwork that is a chain is its LayeredNetwork here (the same graph, bit for bit).
    view : {"split", "coupled", "filan"}
        For a DAG: ``split`` (default) every weighted or merge group a layer at its depth;
        ``coupled`` union-find over identity edges (each residual-stream channel one unit, not
        layered); ``filan`` Filan et al.'s conv → conv channel graph. See docs/dag.md.
    edge_norm : {"l1", "l2", "filan", "nnz"}, optional
        The reduction of a kernel slice (:func:`modgraph.dag_edges.unit_edges`); default ``l1``,
        ``filan`` for the filan view. For a chain every norm but ``nnz`` is |w| (the signed weight
        is kept as ``value``); ``nnz`` makes every edge 1.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    if edge_norm is None:
        edge_norm = "filan" if view == "filan" else "l1"
    if edge_norm not in EDGE_NORMS:
        raise ValueError(f"unknown edge_norm {edge_norm!r}; choose one of {', '.join(EDGE_NORMS)}")
    if isinstance(network, DagNetwork):
        if not network.is_chain:
            return _dag_graph(network, view, edge_norm)
        network = network.to_layered()
    if view == "filan":
        raise ModgraphError(f"the filan view is a conv -> conv channel graph; {network.source or 'this network'} "
                            "is a chain of dense layers (no conv layer)")
    g = _chain_graph(network)
    if edge_norm == "nnz":
        g = UnitGraph(g.layer, g.index, g.src, g.dst, np.ones(g.n_edges), g.widths)
    return replace(g, edge_norm=edge_norm) if edge_norm != "l1" else g


def _chain_graph(network: LayeredNetwork) -> UnitGraph:
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


# -- DAG views -----------------------------------------------------------------------------------
def _dag_graph(net: DagNetwork, view: str, edge_norm: str) -> UnitGraph:
    if view == "filan":
        return _filan_graph(net, edge_norm)
    blocks = edge_blocks(net, edge_norm=edge_norm)
    groups = net.groups
    sizes = np.array([g.n_units for g in groups], dtype=np.int64)
    group = np.repeat(np.arange(len(groups)), sizes)
    index = np.arange(net.n_units, dtype=np.int64) - net.unit_offsets[group]
    depth = np.array([g.depth for g in groups], dtype=np.int64)
    names = tuple(g.name for g in groups)
    kinds = tuple(g.kind for g in groups)
    ops = tuple(g.op_type for g in groups)
    layer = depth[group]
    split = UnitGraph._from_blocks(blocks, layer=layer, index=index, widths=_widths(layer), group=group,
                                   group_names=names, group_kinds=kinds, group_ops=ops,
                                   orig=np.arange(net.n_units), view="split", layered=True, edge_norm=edge_norm)
    return split if view == "split" else _coupled(split)


def _widths(layer: np.ndarray) -> tuple[int, ...]:
    return tuple(int(c) for c in np.bincount(layer, minlength=int(layer.max()) + 1 if layer.size else 0))


def _coupled(split: UnitGraph) -> UnitGraph:
    """Union-find over identity edges: every set of units an Add joins is one unit."""
    ident = split.edge_type == EDGE_TYPES.index("identity")
    if not ident.any():
        return replace(split, view="coupled")
    n = split.n_units
    a = sp.csr_matrix((np.ones(int(ident.sum())), (split.src[ident], split.dst[ident])), shape=(n, n))
    _, comp = sp.csgraph.connected_components(a, directed=False)
    rep = np.full(int(comp.max()) + 1, n, dtype=np.int64)
    np.minimum.at(rep, comp, np.arange(n))                        # representative: the smallest unit number
    order = np.argsort(rep, kind="stable")                         # coupled units in representative order
    new_of_comp = np.empty_like(order)
    new_of_comp[order] = np.arange(order.size)
    new = new_of_comp[comp]
    reps = rep[order]
    s, d = new[split.src], new[split.dst]
    keep = ~ident & (s != d)                                       # identity edges and self-loops vanish
    layer = split.layer[reps]
    return replace(split, layer=layer, index=split.index[reps], src=s[keep], dst=d[keep],
                   value=split.value[keep], widths=_widths(layer), group=split.group[reps],
                   edge_type=split.edge_type[keep], orig=np.arange(reps.size), view="coupled", layered=False)


def _filan_sources(net: DagNetwork, slot: int, conv: np.ndarray, cache: dict):
    """Per input channel of ``slot``: lists of (conv unit, path scale) it carries, through Adds."""
    m = net.tensor_maps[slot]
    out = []
    for c in range(m.n_channels):
        g, k, scale = int(m.group[c]), int(m.unit[c]), float(m.scale[c])
        out.append([(u, scale * s) for u, s in _filan_unit(net, g, k, conv, cache)] if g >= 0 else [])
    return out


def _filan_unit(net, g, k, conv, cache):
    """The conv units (with path scales) that unit k of group g stands for (itself, or an Add's inputs)."""
    key = (g, k)
    if key in cache:
        return cache[key]
    grp = net.groups[g]
    if conv[g]:
        res = [(int(net.unit_offsets[g] + k), 1.0)]
    elif grp.op_type == "add":
        res = []
        for slot in grp.inputs:
            m = net.tensor_maps[slot]
            sg = int(m.group[k])
            if sg >= 0:
                res += [(u, float(m.scale[k]) * s) for u, s in _filan_unit(net, sg, int(m.unit[k]), conv, cache)]
    else:                                       # the image, a dense layer or a gate: not in the channel graph
        res = []
    cache[key] = res
    return res


def _filan_graph(net: DagNetwork, edge_norm: str) -> UnitGraph:
    """Filan et al.'s channel graph: output channels of convs, conv -> conv blocks only (design §5)."""
    groups = net.groups
    conv = np.array([g.op_type in ("conv", "conv_transpose") for g in groups])
    if not conv.any():
        raise ModgraphError(f"the filan view is a conv -> conv channel graph; {net.source or 'this network'} "
                            "has no conv layer")
    cache: dict = {}
    src, dst, val = [], [], []
    gid = np.repeat(np.arange(len(groups)), [g.n_units for g in groups])
    senders, receivers = np.zeros(len(groups), bool), np.zeros(len(groups), bool)
    for g, grp in enumerate(groups):
        if not conv[g]:
            continue
        (slot,) = grp.inputs
        sources = _filan_sources(net, slot, conv, cache)
        k = grp.weight
        red = _slice_norm(k, edge_norm)
        if grp.op_type == "conv":
            per = k.shape[0] // grp.params["group"]
            rows, cols = np.nonzero(np.count_nonzero(k, axis=(-2, -1)))
            in_ch, out_ch = (rows // per) * k.shape[1] + cols, rows
        else:
            per = k.shape[0] // grp.params["group"]
            rows, cols = np.nonzero(np.count_nonzero(k, axis=(-2, -1)))
            in_ch, out_ch = rows, (rows // per) * k.shape[1] + cols
        w = red[rows, cols]
        n_src = np.array([len(x) for x in sources], np.int64)
        first = np.concatenate([[0], np.cumsum(n_src)])
        flat_u = np.array([u for x in sources for u, _ in x], np.int64)
        flat_s = np.array([sc for x in sources for _, sc in x], np.float64)
        cnt = n_src[in_ch]
        rep = np.repeat(np.arange(in_ch.size), cnt)              # one row per (kernel slice, source unit)
        at = first[in_ch][rep] + np.arange(rep.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        src.append(flat_u[at])
        dst.append(net.unit_offsets[g] + out_ch[rep])
        val.append(w[rep] if edge_norm == "nnz" else w[rep] * flat_s[at])
        if rep.size:                             # which groups send and receive, per block (no full-size temp)
            senders[np.unique(gid[flat_u[np.unique(at)]])] = True
            receivers[g] = True
    src, dst, val = _join(src, np.int64), _join(dst, np.int64), _join(val, np.float64)
    used = senders | receivers
    if not used.any():
        raise ModgraphError(f"the filan view keeps conv -> conv blocks only; {net.source or 'this network'} "
                            "has no conv reading another conv")
    kept = np.flatnonzero(used)
    sizes = np.array([groups[g].n_units for g in kept])
    offs = np.concatenate([[0], np.cumsum(sizes)])
    new_unit = np.full(net.n_units, -1, np.int64)
    for i, g in enumerate(kept):
        new_unit[net.unit_offsets[g]:net.unit_offsets[g + 1]] = offs[i] + np.arange(sizes[i])
    depth = np.array([groups[g].depth for g in kept])
    rank = np.unique(depth, return_inverse=True)[1]               # layers: the kept convs' depths, ranked
    group = np.repeat(np.arange(kept.size), sizes)
    layer = rank[group]
    has_in, has_out = receivers[kept], senders[kept]
    kinds = tuple("input" if not has_in[i] else "output" if not has_out[i] else "conv" for i in range(kept.size))
    src = new_unit[src]                          # renumbered one array at a time: the old one freed
    dst = new_unit[dst]
    return UnitGraph(layer, np.concatenate([np.arange(s) for s in sizes]), src, dst, val, _widths(layer), group=group,
                     group_names=tuple(groups[g].name for g in kept), group_kinds=kinds,
                     group_ops=tuple(groups[g].op_type for g in kept),
                     edge_type=np.zeros(src.size, np.int8), orig=np.arange(int(offs[-1])), view="filan",
                     layered=True, edge_norm=edge_norm)


def _join(parts: list, dtype) -> np.ndarray:
    """Concatenate and empty ``parts`` (a column of per-block arrays) without a second copy."""
    out = np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
    parts.clear()
    return out


def _slice_norm(k: np.ndarray, norm: str) -> np.ndarray:
    """One number per (out, in) kernel slice: l1, l2 (Frobenius), filan (matrix 1-norm) or nnz."""
    a = np.abs(k).astype(np.float64)
    if norm == "nnz":
        return np.count_nonzero(k, axis=(-2, -1)).astype(np.float64)
    if norm == "l1":
        return a.sum(axis=(-2, -1))
    if norm == "l2":
        return np.sqrt((a * a).sum(axis=(-2, -1)))
    return a.sum(axis=-2).max(axis=-1)


# -- reachability and cleaning ---------------------------------------------------------------------
def _reach(frm: np.ndarray, to: np.ndarray, seeds: np.ndarray, edge_groups) -> np.ndarray:
    """Units reachable from ``seeds`` along edges frm→to, sweeping the edge groups in order."""
    hit = seeds.copy()
    for e in edge_groups:
        hit[to[e][hit[frm[e]]]] = True
    return hit


def _bfs(n: int, frm: np.ndarray, to: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Units reachable from ``seeds`` along edges frm→to (any directed graph)."""
    s = np.flatnonzero(seeds)
    hit = seeds.copy()
    if s.size == 0:
        return hit
    a = sp.csr_matrix((np.ones(frm.size + s.size, np.int8), (np.concatenate([frm, np.full(s.size, n)]),
                                                              np.concatenate([to, s]))), shape=(n + 1, n + 1))
    order = breadth_first_order(a, n, directed=True, return_predecessors=False)
    hit[order[order < n]] = True
    return hit


def propagate(graph: UnitGraph, start: np.ndarray, *, forward: bool = True) -> np.ndarray:
    """Boolean (n_units, k): ``start`` (n_units, k) spread along directed paths (downstream when
    ``forward``, upstream otherwise), for any view: per layer for a layered graph, to a fixed
    point for the coupled view."""
    out = np.array(start, dtype=bool)
    frm, to = (graph.src, graph.dst) if forward else (graph.dst, graph.src)
    n = graph.n_units
    if graph.layered:                      # edges into layer l only come from earlier layers: one sweep
        key = graph.layer[to] if forward else -graph.layer[to]
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        for e in np.split(order, bounds) if order.size else []:
            rows, r = np.unique(to[e], return_inverse=True)
            cols, c = np.unique(frm[e], return_inverse=True)
            a = sp.csr_matrix((np.ones(e.size, np.float32), (r, c)), shape=(rows.size, cols.size))
            out[rows] |= (a @ out[cols].astype(np.float32)) > 0
        return out
    a = sp.csr_matrix((np.ones(frm.size, np.float32), (to, frm)), shape=(n, n))
    while True:
        nxt = out | ((a @ out.astype(np.float32)) > 0)
        if (nxt == out).all():
            return out
        out = nxt


def condense(graph: UnitGraph) -> UnitGraph:
    """Remove units with no path from an input or none to an output; outputs always stay.

    This is the fixed point of Neural Sculpting's condensation (drop inputs with
    out-degree 0 and hidden units with in- or out-degree 0, repeat), computed in one
    forward and one backward sweep over the layers (a breadth-first search for a DAG view).
    """
    if graph.group is not None:
        ins, outs = np.zeros(graph.n_units, bool), np.zeros(graph.n_units, bool)
        ins[graph.input_units()], outs[graph.output_units()] = True, True
        from_input = _bfs(graph.n_units, graph.src, graph.dst, ins)
        to_output = _bfs(graph.n_units, graph.dst, graph.src, outs)
        return graph.subgraph((from_input & to_output) | outs)
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
