"""``subfunctions``: threshold-free module detection for small pruned networks (issue 8).

A sub-function is a set of units that reach, and are reached by, the same units. No single
view of a pruned network shows that for every task family, so :func:`subfunctions` makes
proposals from two views and from the reach signatures, and lets description lengths referee,
with no threshold and no per-task setting. It reads top to bottom; each step is a function
below, in this order (the numbers of ``docs/methods.md``):

1. condense the unit graph (``prepare``): dead units are labelled −1.
2. :func:`_views` — the **unit graph** (surviving edges) and the **reachability closure** (u–v
   whenever a directed path joins them, :func:`~modgraph.detect._paths.closure_edges`), both
   undirected and unweighted (the masks decide, as in ``sculpting``).
3. :func:`_modularity_proposals` — graph-tool's ``ModularityState`` on each view.
4. :func:`_closure_referee` — the proposal with the smaller DC-SBM description length on the
   closure is kept.
5. :func:`signature_partition` — a third proposal from the meaning of the criteria: units keyed
   by the input groups reaching them and the output functions they reach.
6. :func:`_unit_graph_referee` — step 4's proposal or the signature one, by DC-SBM description
   length on the unit graph.
7. :func:`_path_graph_referee` — inputs regrouped by the modules they reach
   (:func:`regroup_inputs`), kept when that shortens the SBM description length of the
   input–unit path-count graph (:func:`~modgraph.detect._paths.input_path_counts`).

Why this design and what else was measured:
``docs/methods.md``, section "subfunctions".

What it cannot do: inputs that reach the same modules cannot be told apart (an A-only input that
a pruned net also wired into B's units groups with the shared inputs); one module comes out only
when a view has no modular split at all (a complete closure, as in a dense net or an ideal
[4,1,4]); the description length only chooses between the proposals (letting it choose "one
module" as well rejects the real splits of these tiny graphs, see the methods section), so a
noisy net without sub-functions still comes out split. A module reused by two others is found
only when the unit graph's proposal wins, and an output fed by two modules joins one of them
rather than forming its own. On a DAG view (skip edges followed, docs/methods.md "On DAGs") the
unit-graph proposal is made with residual streams merged (an Add's identity edges contracted), so
a module is not cut at its Adds; a module boundary inside one residual stream cannot be found.

Examples
--------
>>> from modgraph.planted import disjoint_mlps
>>> from modgraph.graph import build_unit_graph
>>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
>>> p = subfunctions(build_unit_graph(net), seed=0)
>>> p.labels.tolist() == truth.tolist(), p.n_modules
(True, 2)
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from modgraph.dag_edges import EDGE_TYPES
from modgraph.detect import _gt
from modgraph.detect._common import check_seed, prepare, spread
from modgraph.detect._paths import closure_edges, input_path_counts
from modgraph.detect._registry import register
from modgraph.graph import UnitGraph
from modgraph.partition import Partition, canonical_labels

__all__ = ["subfunctions", "closure_edges", "signature_partition", "regroup_inputs", "input_path_counts"]

#: Description lengths (nats) closer than this are a tie; ties go to the earlier candidate.
_TIE = 1e-9


@register("subfunctions")
def subfunctions(graph: UnitGraph, *, seed: int = 1, n_restarts: int = 5) -> Partition:
    """Modules of a pruned network's unit graph with no per-task parameter (module docstring).

    Parameters
    ----------
    graph : UnitGraph
        Possibly uncondensed; weights are ignored. Dead units are labelled −1.
    seed : int
        Seeds graph-tool; the same seed gives the same labels.
    n_restarts : int
        ``ModularityState`` restarts per view (all run; the best modularity is kept). A compute
        budget, not a task parameter: the default serves every family.

    Returns
    -------
    Partition
        ``stats``: ``chosen`` (``"unit"``, ``"closure"`` or ``"signature"``), per modularity view its
        ``modularity`` on that view and ``dl`` (description length on the closure, nats) — on a DAG
        with Adds the unit view's modularity is that of the stream-merged graph, whose number of
        units is ``unit["n_streams"]``;
        ``signature`` and ``kept_dl_unit`` (the signature proposal and step 4's kept proposal: their
        description lengths on the unit graph, nats); ``n_closure_edges``; ``inputs_regrouped`` (step 7
        kept) and, when the regrouping changed anything, ``path_graph_dl`` (``kept`` / ``regrouped``: the
        description lengths on the input–unit path-count graph, nats).
    """
    seed = check_seed(seed)
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, (int, np.integer)) or n_restarts < 1:
        raise ValueError(f"n_restarts must be an int >= 1, got {n_restarts!r}")
    if isinstance(graph, UnitGraph):
        graph.require("subfunctions")                          # layers: a chain's, or a DAG's group depths
    work = prepare(graph, condense=True)                                                       # step 1
    unit_g, closure_g, n_closure_edges = _views(work)                                          # step 2
    streams = _stream_view(work)
    proposals = _modularity_proposals(unit_g, closure_g, seed=seed, n_restarts=int(n_restarts),  # step 3
                                      streams=streams)
    view, kept, view_stats = _closure_referee(proposals, closure_g)                            # step 4
    signature = signature_partition(work, proposals["closure"][0])                             # step 5
    chosen, labels, signature_stats = _unit_graph_referee(unit_g, view, kept, signature)       # step 6
    labels, regroup_stats = _path_graph_referee(work, closure_g, labels)                       # step 7
    stats = {"n_units_used": work.n_units, "n_closure_edges": n_closure_edges, **view_stats, **signature_stats,
             "chosen": chosen, **regroup_stats}
    if streams is not None:
        stats["unit"]["n_streams"] = int(streams[1].max()) + 1
    return Partition(spread(graph, work, labels), method="subfunctions", seed=seed, stats=stats)


def _views(g: UnitGraph):
    """Step 2: the unit graph and the reachability closure as graph-tool graphs, and the closure's size.

    Both are undirected and unweighted. The closure joins each unit to everything upstream and
    downstream of it, so the units of one sub-function are densely joined there even when
    pruning left them few direct edges; the unit graph keeps the bottlenecks a reused module
    sits behind.
    """
    csrc, cdst = closure_edges(g)
    return _gt.to_graph_tool(g.n_units, g.src, g.dst), _gt.to_graph_tool(g.n_units, csrc, cdst), int(csrc.size)


def _stream_view(g: UnitGraph):
    """The unit graph with residual streams merged, for a DAG view with identity edges, else None.

    Returns a graph-tool graph with one vertex per set of units that identity edges (an Add's)
    join — the coupled view's units, as pruning tools see them — with the other edges between
    them, and the set of each unit of ``g``.
    """
    if g.edge_type is None:
        return None
    ident = g.edge_type == EDGE_TYPES.index("identity")
    if not ident.any():
        return None
    a = sp.csr_matrix((np.ones(int(ident.sum())), (g.src[ident], g.dst[ident])), shape=(g.n_units, g.n_units))
    n_sets, member = sp.csgraph.connected_components(a, directed=False)
    s, d = member[g.src[~ident]], member[g.dst[~ident]]
    keep = s != d
    return _gt.to_graph_tool(n_sets, s[keep], d[keep]), member.astype(np.int64)


def _modularity_proposals(unit_g, closure_g, *, seed: int, n_restarts: int, streams=None) -> dict:
    """Step 3: per view, ``(labels, modularity)`` of the best of ``n_restarts`` ``ModularityState`` fits.

    Modularity needs no number of modules; on the unit graph it cuts at the bottleneck behind a
    reused module, on the closure it keeps the units of each sub-function together. The best
    fit is chosen by exact modularity, ties to the smallest canonical labelling
    (:func:`~modgraph.detect._gt.best_modularity_partition`), so the answer does not depend on
    the order of the restarts. With ``streams`` (:func:`_stream_view`, a DAG with Adds) the
    unit-graph proposal is made on the graph with residual streams merged and spread back to
    the units: an Add's identity edges, one per channel, are the weakest links of the unit graph
    and modularity would cut every module at them.
    """
    out = {view: _gt.best_modularity_partition(g, seed=seed, n_restarts=n_restarts)
           for view, g in (("unit", unit_g if streams is None else streams[0]), ("closure", closure_g))}
    if streams is not None:
        labels, q = out["unit"]
        out["unit"] = (canonical_labels(np.asarray(labels, dtype=np.int64)[streams[1]]), q)
    return out


def _closure_referee(proposals: dict, closure_g):
    """Step 4: the proposal whose DC-SBM description length on the closure is smaller (ties: unit view).

    Neither view is right for every family; minimum description length picks, per network, the
    proposal that compresses the closure better. Returns the winning view's name, its labels and
    per view ``{"modularity", "dl", "n_modules"}``.
    """
    stats, best = {}, None
    for view, (labels, q) in proposals.items():
        dl = _gt.blockmodel_dl(closure_g, labels)
        stats[view] = {"modularity": q, "dl": dl, "n_modules": int(labels.max()) + 1}
        if best is None or dl < best[0] - _TIE:
            best = (dl, view, labels)
    return best[1], best[2], stats


def signature_partition(g: UnitGraph, proposal: np.ndarray) -> np.ndarray:
    """Step 5: modules from reach signatures over the terminal groups of ``proposal`` (condensed ``g``).

    Output functions: ``proposal``'s groups of the output units. Input groups: ``proposal``'s
    groups of the input units, joined wherever two of them feed one unit of the next layer (an
    input-separable group has first-layer units of its own). A non-output unit reaching the
    outputs of exactly one function joins that function's module (with its outputs); every other
    unit is keyed by (the input groups with a path to it, or its own group for an input; the
    output functions it reaches), so a module reused by several functions is the set of units
    reaching all of them. No threshold: keys are compared for equality.

    >>> from modgraph.planted import disjoint_mlps
    >>> from modgraph.graph import build_unit_graph
    >>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
    >>> g = build_unit_graph(net)
    >>> signature_partition(g, truth).tolist() == truth.tolist()
    True
    """
    proposal = np.asarray(proposal, dtype=np.int64)
    ins, outs = g.units_in_layer(0), g.output_units()
    reach = np.zeros((g.n_units, g.n_units), dtype=bool)               # reach[u, v]: a path u -> v
    csrc, cdst = closure_edges(g)
    reach[csrc, cdst] = True
    _, function = np.unique(proposal[outs], return_inverse=True)       # output function per output
    group = _input_groups(g, proposal)                                 # input group per input
    reaches_function = _reached_groups(reach[:, outs], function)
    reaches_function[outs] = np.eye(function.max() + 1, dtype=bool)[function]   # an output: its own function
    from_group = _reached_groups(reach[ins, :].T, group)
    from_group[ins] = np.eye(group.max() + 1, dtype=bool)[group]               # an input: its own group
    from_group[reaches_function.sum(axis=1) == 1] = False                      # exclusive to one function
    keys = np.hstack([from_group, reaches_function]).astype(np.int8)
    _, labels = np.unique(keys, axis=0, return_inverse=True)
    return canonical_labels(labels.astype(np.int64).ravel())


def _input_groups(g: UnitGraph, proposal: np.ndarray) -> np.ndarray:
    """``proposal``'s groups of the inputs (0.. per input), joined where two feed one first-layer unit."""
    ins = g.units_in_layer(0)
    first = g.layer[g.src] == 0
    position = np.full(g.n_units, -1, dtype=np.int64)
    position[ins] = np.arange(ins.size)
    _, group = np.unique(proposal[ins], return_inverse=True)
    group = _join_groups(group.astype(np.int64), position[g.src[first]], g.dst[first])
    return np.unique(group, return_inverse=True)[1]


def _join_groups(groups: np.ndarray, first_src: np.ndarray, first_dst: np.ndarray) -> np.ndarray:
    """Join input groups (labels over the inputs) wherever two of them feed one first-layer unit."""
    parent = np.arange(groups.max() + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for d in np.unique(first_dst):
        feeding = np.unique(groups[first_src[first_dst == d]])
        for other in feeding[1:]:
            ra, rb = find(feeding[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(x) for x in groups], dtype=np.int64)


def _reached_groups(paths: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(rows, n_groups) bool: whether a row has a path to any member of each group (``paths`` over members)."""
    return (paths.astype(np.int64) @ np.eye(groups.max() + 1, dtype=np.int64)[groups]) > 0


def _unit_graph_referee(unit_g, view: str, kept: np.ndarray, signature: np.ndarray):
    """Step 6: step 4's proposal or the signature proposal, by DC-SBM description length on the unit graph.

    The signature proposal is built to meet the criteria, so it must also compress the network
    itself better to win (ties to step 4's). Returns the chosen name, its labels and
    ``{"kept_dl_unit", "signature": {"dl_unit", "n_modules"}}``.
    """
    kept_dl, signature_dl = _gt.blockmodel_dl(unit_g, kept), _gt.blockmodel_dl(unit_g, signature)
    stats = {"kept_dl_unit": kept_dl, "signature": {"dl_unit": signature_dl, "n_modules": int(signature.max()) + 1}}
    if signature_dl < kept_dl - _TIE:
        return "signature", signature, stats
    return view, kept, stats


def _path_graph_referee(g: UnitGraph, closure_g, labels: np.ndarray):
    """Step 7: inputs regrouped by reach, kept when the input–unit path-count graph's SBM DL falls.

    Inputs belong together when they reach the same modules. :func:`regroup_inputs` places each
    such group whole by the DC-SBM description length on the closure; the result is kept only
    when it lowers the (non-degree-corrected) SBM description length of the bipartite graph
    joining each input to each later unit by as many edges as there are directed paths between
    them. Returns the labels and ``{"inputs_regrouped"[, "path_graph_dl": {"kept", "regrouped"}]}``.
    """
    regrouped = regroup_inputs(g, labels, dl=lambda trial: _gt.blockmodel_dl(closure_g, trial))
    if regrouped.tolist() == labels.tolist():
        return labels, {"inputs_regrouped": False}
    paths = input_path_counts(g)
    before, after = _path_graph_dl(g, paths, labels), _path_graph_dl(g, paths, regrouped)
    stats = {"inputs_regrouped": after < before - _TIE, "path_graph_dl": {"kept": before, "regrouped": after}}
    return (regrouped if stats["inputs_regrouped"] else labels), stats


def regroup_inputs(g: UnitGraph, labels: np.ndarray, dl) -> np.ndarray:
    """``labels`` with the inputs regrouped by the modules they reach (condensed ``g``).

    Inputs with the same set of reached modules (the ``labels`` of the non-input units they have a
    directed path to) form one group; groups are placed largest first (ties: first input), each
    whole into one module: a module that holds some of its inputs and no earlier group (most of
    its inputs first, then the smaller label) or a new module, whichever gives the smaller ``dl``
    (a callable: labels -> description length; ties to the earlier candidate). Non-input units
    keep their labels. No threshold: keys are compared for equality.

    >>> from modgraph.network import Layer, LayeredNetwork
    >>> from modgraph.graph import build_unit_graph
    >>> w1 = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])        # x1 -> h1; x2 -> h1, h2; x3 -> h2
    >>> g = build_unit_graph(LayeredNetwork([Layer.from_dense(w1), Layer.from_dense(np.eye(2))]))
    >>> regroup_inputs(g, np.array([0, 0, 1, 0, 1, 0, 1]), dl=lambda l: 0.0).tolist()   # x2 reaches both
    [0, 1, 2, 0, 2, 0, 2]
    """
    labels = np.asarray(labels, dtype=np.int64).copy()
    ins = g.units_in_layer(0)
    if ins.size == 0 or not (g.layer > 0).any():
        return canonical_labels(labels)
    key = _reached_module_sets(g, labels)
    order = sorted(range(int(key.max()) + 1), key=lambda k: (-int((key == k).sum()), k))   # largest first
    claimed, fresh = set(), int(labels.max()) + 1
    for k in order:
        members = ins[key == k]
        module = _place_group(labels, members, claimed, fresh, dl)
        fresh += module == fresh
        claimed.add(module)
        labels[members] = module
    return canonical_labels(labels)


def _reached_module_sets(g: UnitGraph, labels: np.ndarray) -> np.ndarray:
    """Per input, a canonical id of the set of modules (``labels`` of non-input units) it has a path to."""
    later = np.flatnonzero(g.layer > 0)
    position = np.full(g.n_units, -1, dtype=np.int64)
    position[later] = np.arange(later.size)
    _, module = np.unique(labels[later], return_inverse=True)
    reach = np.zeros((g.units_in_layer(0).size, later.size), dtype=bool)
    rows, cols, _ = input_path_counts(g)
    reach[rows, position[cols]] = True
    _, key = np.unique(_reached_groups(reach, module.ravel()), axis=0, return_inverse=True)
    return canonical_labels(key.ravel().astype(np.int64))


def _place_group(labels, members, claimed: set, fresh: int, dl) -> int:
    """The module for one group of inputs: an unclaimed module of its inputs (most first) or ``fresh``."""
    mods, counts = np.unique(labels[members], return_counts=True)
    candidates = [int(m) for m in mods[np.argsort(-counts, kind="stable")] if int(m) not in claimed] + [fresh]
    best = None
    for c in candidates:
        trial = labels.copy()
        trial[members] = c
        d = dl(canonical_labels(trial))
        if best is None or d < best[0] - _TIE:
            best = (d, c)
    return best[1]


def _path_graph_dl(g: UnitGraph, paths, labels: np.ndarray) -> float:
    """Non-degree-corrected SBM description length of the input–unit path-count graph under ``labels``."""
    rows, cols, counts = paths
    ins, later = g.units_in_layer(0), np.flatnonzero(g.layer > 0)
    position = np.full(g.n_units, -1, dtype=np.int64)
    position[later] = np.arange(later.size)
    return _gt.bipartite_dl(ins.size, later.size, rows, position[cols], counts, labels[ins], labels[later],
                            deg_corr=False)
