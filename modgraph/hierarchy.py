"""The module DAG: which sub-functions a partition found, on which inputs, feeding which.

From any :class:`~modgraph.partition.Partition` over a :class:`~modgraph.graph.UnitGraph`,
:func:`module_dag` builds the modules as nodes — their units per layer, their input
support (the input units with a directed path to them), the outputs they drive, their
level (longest path from the inputs) — and the edges between modules, weighted by the
number and the |w|-sum of the unit edges joining them. The reuse of a module is the
number of modules it feeds. A :class:`~modgraph.partition.Hierarchy` adds its nested levels.
Everything is JSON-ready through :meth:`ModuleDAG.to_dict`.

Examples
--------
>>> import numpy as np
>>> from modgraph.network import Layer, LayeredNetwork
>>> from modgraph.graph import build_unit_graph
>>> from modgraph.partition import Partition
>>> net = LayeredNetwork([Layer.from_dense(np.eye(2)), Layer.from_dense(np.array([[1.0, 1.0]]))])
>>> g = build_unit_graph(net)                 # x0 -> h0, x1 -> h1, {h0, h1} -> y0
>>> dag = module_dag(g, Partition([0, 1, 0, 1, 2]))
>>> [m.input_support for m in dag.modules], [m.level for m in dag.modules], dag.modules[0].reuse
([[0], [1], [0, 1]], [0, 0, 1], 1)
>>> [(e.source, e.target, e.n_edges) for e in dag.edges]
[(0, 2, 1), (1, 2, 1)]
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp

from modgraph.graph import UnitGraph, propagate
from modgraph.partition import Hierarchy, Partition

__all__ = ["Module", "ModuleEdge", "ModuleDAG", "module_dag", "reachability"]


@dataclass(frozen=True)
class Module:
    """One module: a set of units, what reaches it and what it reaches.

    ``units`` maps a layer (as a string, for JSON) to the unit indices of the *original*
    network in that layer. ``inputs`` are the input units inside the module;
    ``input_support`` every input unit with a directed path to one of its units;
    ``outputs`` the output units inside it; ``drives`` every output unit reachable from it.
    For a DAG view (``graph.is_dag``) ``units`` maps a *group name* to channel indices, ``layers``
    are the depths of those groups, and ``inputs`` … ``drives`` are unit names ``"{group}:{k}"``
    (a DAG may have several output groups, so an index alone would be ambiguous).
    """

    id: int
    units: dict
    n_units: int
    layers: list
    inputs: list
    input_support: list
    outputs: list
    drives: list
    feeds: list
    fed_by: list
    reuse: int
    level: int


@dataclass(frozen=True)
class ModuleEdge:
    source: int
    target: int
    n_edges: int
    weight: float


@dataclass(frozen=True)
class ModuleDAG:
    """Modules, the edges between them, and (for nested methods) the nested levels."""

    modules: list
    edges: list
    n_layers: int
    acyclic: bool
    nested_levels: list | None = None

    def to_dict(self) -> dict:
        return {"n_modules": len(self.modules), "n_layers": self.n_layers, "acyclic": self.acyclic,
                "modules": [asdict(m) for m in self.modules], "edges": [asdict(e) for e in self.edges],
                "nested_levels": self.nested_levels}

    def module_of(self, layer, index: int) -> int | None:
        """The module holding unit ``index`` of ``layer`` (original numbering; a group name for a DAG), or None."""
        for m in self.modules:
            if index in m.units.get(str(layer), ()):
                return m.id
        return None


def reachability(graph: UnitGraph, *, towards: str = "inputs") -> np.ndarray:
    """Boolean (n_units, n_inputs) matrix of which inputs reach each unit (``towards="inputs"``),
    or (n_units, n_outputs) of which outputs each unit reaches (``towards="outputs"``).

    Columns follow the order of ``graph.units_in_layer(0)`` (resp. the last layer); for a DAG view
    of ``graph.input_units()`` (resp. ``output_units()``), along the view's directed edges.
    """
    last = graph.n_layers - 1
    forward = towards == "inputs"
    if towards not in ("inputs", "outputs"):
        raise ValueError(f"towards must be 'inputs' or 'outputs', not {towards!r}")
    if graph.is_dag:
        ends = graph.input_units() if forward else graph.output_units()
        start = np.zeros((graph.n_units, ends.size), dtype=bool)
        start[ends, np.arange(ends.size)] = True
        return propagate(graph, start, forward=forward)
    ends = graph.units_in_layer(0 if forward else last)
    out = np.zeros((graph.n_units, ends.size), dtype=bool)
    out[ends, np.arange(ends.size)] = True
    order = range(last) if forward else range(last - 1, -1, -1)
    for l in order:
        block = graph.layer_block(l, weighted=False)           # (units of l+1, units of l)
        src, dst = (l, l + 1) if forward else (l + 1, l)
        b = block if forward else block.T
        reached = (sp.csr_matrix(b, dtype=np.float32) @ out[graph.units_in_layer(src)].astype(np.float32)) > 0
        out[graph.units_in_layer(dst)] |= reached
    return out


def module_dag(graph: UnitGraph, partition: Partition) -> ModuleDAG:
    """Build the module DAG of ``partition`` (labels over the units of ``graph``)."""
    labels = np.asarray(partition.labels)
    if labels.shape != (graph.n_units,):
        raise ValueError(f"partition has {labels.size} labels but the graph has {graph.n_units} units")
    n_mod = partition.n_modules
    last = graph.n_layers - 1
    reach_in, reach_out = reachability(graph, towards="inputs"), reachability(graph, towards="outputs")
    if graph.is_dag:
        inputs, outputs = graph.input_units(), graph.output_units()
        names = np.array(graph.unit_names(), dtype=object)          # ends named "{group}:{k}"

        def units_of(members):                                      # units keyed by group name
            gs = graph.group[members]
            return {graph.group_names[g]: graph.index[members[gs == g]].tolist() for g in np.unique(gs).tolist()}
    else:
        inputs, outputs = graph.units_in_layer(0), graph.units_in_layer(last)
        names = graph.index                                         # ends as indices in their layer

        def units_of(members):                                      # units keyed by layer
            return {str(l): graph.index[members[graph.layer[members] == l]].tolist()
                    for l in np.unique(graph.layer[members]).tolist()}
    is_in, is_out = np.zeros(graph.n_units, bool), np.zeros(graph.n_units, bool)
    is_in[inputs], is_out[outputs] = True, True
    counts, weights = _module_edges(graph, labels, n_mod)
    adjacency = counts > 0
    np.fill_diagonal(adjacency, False)
    levels, acyclic = _levels(adjacency)
    modules = []
    for m, members in enumerate(partition.modules()):
        feeds = np.flatnonzero(adjacency[m]).tolist()
        modules.append(Module(
            id=m, units=units_of(members), n_units=int(members.size),
            layers=sorted(set(graph.layer[members].tolist())),
            inputs=names[members[is_in[members]]].tolist(),
            input_support=names[inputs[reach_in[members].any(axis=0)]].tolist(),
            outputs=names[members[is_out[members]]].tolist(),
            drives=names[outputs[reach_out[members].any(axis=0)]].tolist(),
            feeds=feeds, fed_by=np.flatnonzero(adjacency[:, m]).tolist(), reuse=len(feeds),
            level=int(levels[m])))
    edges = [ModuleEdge(int(a), int(b), int(counts[a, b]), float(weights[a, b]))
             for a, b in zip(*np.nonzero(adjacency))]
    nested = None
    if isinstance(partition, Hierarchy):
        nested = [partition.project(l).tolist() for l in range(len(partition.levels))]
    return ModuleDAG(modules, edges, graph.n_layers, acyclic, nested)


def _module_edges(graph: UnitGraph, labels: np.ndarray, n_mod: int):
    ls, ld = labels[graph.src], labels[graph.dst]
    ok = (ls >= 0) & (ld >= 0)
    counts = np.zeros((n_mod, n_mod), dtype=np.int64)
    weights = np.zeros((n_mod, n_mod))
    np.add.at(counts, (ls[ok], ld[ok]), 1)
    np.add.at(weights, (ls[ok], ld[ok]), graph.weight[ok])
    return counts, weights


def _levels(adjacency: np.ndarray) -> tuple[np.ndarray, bool]:
    """Longest path from a source module; modules on a cycle share the level of their
    strongly connected component (the DAG is then reported as not acyclic)."""
    n = adjacency.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), True
    n_comp, comp = sp.csgraph.connected_components(sp.csr_matrix(adjacency), directed=True,
                                                   connection="strong")
    cdag = np.zeros((n_comp, n_comp), dtype=bool)
    a, b = np.nonzero(adjacency)
    cdag[comp[a], comp[b]] = True
    np.fill_diagonal(cdag, False)
    level = np.zeros(n_comp, dtype=np.int64)
    indeg = cdag.sum(axis=0)
    frontier = list(np.flatnonzero(indeg == 0))
    while frontier:                                  # Kahn's order, relaxing longest paths
        c = frontier.pop()
        for d in np.flatnonzero(cdag[c]):
            level[d] = max(level[d], level[c] + 1)
            indeg[d] -= 1
            if indeg[d] == 0:
                frontier.append(d)
    return level[comp], n_comp == n
