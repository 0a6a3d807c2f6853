"""``subfunctions``: threshold-free module detection for small pruned networks (issue 8).

Two views of the condensed network, one inference each, and a description length to choose:

1. The **unit graph**: the surviving edges, undirected, unweighted.
2. The **reachability closure**: unit u joined to unit v whenever a directed path runs from one
   to the other (ancestors and descendants, every layer distance), undirected, unweighted. A
   sub-function is a set of units that reach and are reached by the same units, so its units
   are densely joined here even when the pruned edges between them are few.
3. On each view, graph-tool's ``ModularityState`` (best of several seeded restarts, greedy
   refinement) proposes a partition.
4. The proposal with the smaller degree-corrected SBM description length **on the closure** is
   kept (ties to the unit-graph proposal): minimum description length as a referee between two
   candidates, with no threshold and no per-task setting.
5. A third proposal from the meaning of the criteria, the **reach signature**
   (:func:`signature_partition`): output functions are the closure proposal's groups of outputs;
   input groups are the closure proposal's groups of inputs joined wherever two groups feed one
   first-hidden-layer unit; a non-output unit that reaches the outputs of one function only joins
   that function's module, every other unit is keyed by (input groups reaching it, output
   functions it reaches). A module reused by several functions is a set of units reaching all of
   them.
6. Between the kept proposal of step 4 and the signature proposal, the smaller degree-corrected
   SBM description length **on the unit graph** decides (ties to step 4's).
7. (round 3) **Inputs regrouped by reach** (:func:`regroup_inputs`): inputs belong together when
   they reach the same modules (the modules of the non-input units they have a directed path to);
   each such group of inputs goes, whole, into one module (one of the modules its inputs are in,
   or a new one: the smaller DC-SBM description length on the closure decides; a module takes one
   group). The regrouping is kept when it lowers the (non-degree-corrected) SBM description length
   of the **input–unit path-count graph** (each input joined to each later unit by as many edges
   as there are directed paths between them; :func:`input_path_counts`), else step 6's answer
   stands.

Weights are ignored (the masks decide, as in ``sculpting``); dead units are condensed away and
labelled −1. Why this design and what else was measured: ``docs/methods.md``, section
"subfunctions".

What it cannot do: inputs that reach the same modules cannot be told apart (an A-only input that
a pruned net also wired into B's units groups with the shared inputs); one module comes out only when a view has no modular split at all (a complete
closure, as in a dense net or an ideal [4,1,4]); the description length only chooses between the
two proposals (letting it choose "one module" as well rejects the real splits of these tiny
graphs, see the methods section), so a noisy net without sub-functions still comes out split.
A module reused by two others is found only when the unit graph's proposal wins, and an output
fed by two modules joins one of them rather than forming its own.

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

from modgraph.detect import _gt
from modgraph.detect._registry import register
from modgraph.detect._common import check_seed, prepare, spread
from modgraph.graph import UnitGraph
from modgraph.partition import Partition, canonical_labels

__all__ = ["subfunctions", "closure_edges", "signature_partition", "regroup_inputs", "input_path_counts"]


def closure_edges(g: UnitGraph) -> tuple[np.ndarray, np.ndarray]:
    """(src, dst) of every pair of units joined by a directed path of length >= 1 (src upstream).

    >>> from modgraph.network import Layer, LayeredNetwork
    >>> from modgraph.graph import build_unit_graph
    >>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0, 1.0]])), Layer.from_dense(np.array([[1.0]]))])
    >>> s, d = closure_edges(build_unit_graph(net))
    >>> sorted(zip(s.tolist(), d.tolist()))
    [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    """
    steps = [g.layer_block(m, weighted=False).T.tocsr().astype(bool) for m in range(g.n_layers - 1)]
    src, dst = [], []
    for l in range(g.n_layers - 1):
        here = g.units_in_layer(l)
        cur = sp.identity(here.size, format="csr", dtype=bool)
        for m in range(l, g.n_layers - 1):
            cur = (cur @ steps[m]).astype(bool).tocoo()             # (units of l, units of m+1)
            if cur.nnz == 0:
                break
            src.append(here[cur.row])
            dst.append(g.units_in_layer(m + 1)[cur.col])
            cur = cur.tocsr()
    if not src:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(src).astype(np.int64), np.concatenate(dst).astype(np.int64)


def _join_inputs(groups: np.ndarray, first_src: np.ndarray, first_dst: np.ndarray) -> np.ndarray:
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


def signature_partition(g: UnitGraph, proposal: np.ndarray) -> np.ndarray:
    """Modules from reach signatures over the terminal groups of ``proposal`` (condensed ``g``).

    Output functions: ``proposal``'s groups of the output units. Input groups: ``proposal``'s
    groups of the input units, joined wherever two of them feed one unit of the next layer (an
    input-separable group has first-layer units of its own). A non-output unit reaching the
    outputs of exactly one function joins that function's module (with its outputs); every other
    unit is keyed by (the input groups with a path to it, or its own group for an input; the
    output functions it reaches). No threshold: keys are compared for equality.

    >>> from modgraph.planted import disjoint_mlps
    >>> from modgraph.graph import build_unit_graph
    >>> net, truth = disjoint_mlps([3, 4, 2], n_modules=2)
    >>> g = build_unit_graph(net)
    >>> signature_partition(g, truth).tolist() == truth.tolist()
    True
    """
    proposal = np.asarray(proposal, dtype=np.int64)
    n, last = g.n_units, g.n_layers - 1
    ins, outs = g.units_in_layer(0), g.units_in_layer(last)
    reach = np.zeros((n, n), dtype=bool)
    csrc, cdst = closure_edges(g)
    reach[csrc, cdst] = True
    _, fun = np.unique(proposal[outs], return_inverse=True)                 # output function per output
    first = (g.layer[g.src] == 0)
    pos_in = np.full(n, -1, dtype=np.int64)
    pos_in[ins] = np.arange(ins.size)
    _, grp = np.unique(proposal[ins], return_inverse=True)
    grp = _join_inputs(grp.astype(np.int64), pos_in[g.src[first]], g.dst[first])
    _, grp = np.unique(grp, return_inverse=True)
    reach_fun = (reach[:, outs].astype(np.int64) @ np.eye(fun.max() + 1, dtype=np.int64)[fun]) > 0
    from_grp = (reach[ins, :].T.astype(np.int64) @ np.eye(grp.max() + 1, dtype=np.int64)[grp]) > 0
    from_grp[ins] = np.eye(grp.max() + 1, dtype=bool)[grp]                  # an input: its own group
    reach_fun[outs] = np.eye(fun.max() + 1, dtype=bool)[fun]                # an output: its own function
    single = reach_fun.sum(axis=1) == 1
    from_grp[single] = False                                                # exclusive to one function
    keys = np.hstack([from_grp, reach_fun]).astype(np.int8)
    _, labels = np.unique(keys, axis=0, return_inverse=True)
    return canonical_labels(labels.astype(np.int64).ravel())


def input_path_counts(g: UnitGraph) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input position, unit id, number of directed paths) for every input–unit pair joined by a path.

    >>> from modgraph.network import Layer, LayeredNetwork
    >>> from modgraph.graph import build_unit_graph
    >>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0], [1.0]])), Layer.from_dense(np.array([[1.0, 1.0]]))])
    >>> i, u, c = input_path_counts(build_unit_graph(net))     # one input, two hidden units, one output
    >>> sorted(zip(i.tolist(), u.tolist(), c.tolist()))
    [(0, 1, 1), (0, 2, 1), (0, 3, 2)]
    """
    ins = g.units_in_layer(0)
    cur = sp.identity(ins.size, format="csr", dtype=np.int64)
    rows, cols, counts = [], [], []
    for m in range(g.n_layers - 1):
        step = g.layer_block(m, weighted=False).T.tocsr().astype(np.int64)
        step.data[:] = 1
        cur = (cur @ step).tocsr()
        cur.eliminate_zeros()
        if cur.nnz == 0:
            break
        coo = cur.tocoo()
        rows.append(coo.row)
        cols.append(g.units_in_layer(m + 1)[coo.col])
        counts.append(coo.data)
    if not rows:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy(), z.copy()
    return (np.concatenate(rows).astype(np.int64), np.concatenate(cols).astype(np.int64),
            np.concatenate(counts).astype(np.int64))


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
    later = np.flatnonzero(g.layer > 0)
    if ins.size == 0 or later.size == 0:
        return canonical_labels(labels)
    pos = np.full(g.n_units, -1, dtype=np.int64)
    pos[later] = np.arange(later.size)
    _, mod = np.unique(labels[later], return_inverse=True)
    reach = np.zeros((ins.size, later.size), dtype=bool)
    rows, cols, _ = input_path_counts(g)
    reach[rows, pos[cols]] = True
    keys = (reach.astype(np.int64) @ np.eye(mod.max() + 1, dtype=np.int64)[mod.ravel()]) > 0
    _, key = np.unique(keys, axis=0, return_inverse=True)
    key = canonical_labels(key.ravel().astype(np.int64))
    order = sorted(range(int(key.max()) + 1), key=lambda k: (-int((key == k).sum()), k))
    claimed, fresh = set(), int(labels.max()) + 1
    for k in order:
        members = ins[key == k]
        mods, cnt = np.unique(labels[members], return_counts=True)
        cands = [int(m) for m in mods[np.argsort(-cnt, kind="stable")] if int(m) not in claimed] + [fresh]
        best = None
        for c in cands:
            trial = labels.copy()
            trial[members] = c
            d = dl(canonical_labels(trial))
            if best is None or d < best[0] - 1e-9:
                best = (d, c)
        if best[1] == fresh:
            fresh += 1
        claimed.add(best[1])
        labels[members] = best[1]
    return canonical_labels(labels)


def _path_graph_dl(g: UnitGraph, paths, labels: np.ndarray) -> float:
    """Non-degree-corrected SBM description length of the input–unit path-count graph under ``labels``."""
    rows, cols, counts = paths
    ins, later = g.units_in_layer(0), np.flatnonzero(g.layer > 0)
    pos = np.full(g.n_units, -1, dtype=np.int64)
    pos[later] = np.arange(later.size)
    return _gt.bipartite_dl(ins.size, later.size, rows, pos[cols], counts, labels[ins], labels[later],
                            deg_corr=False)


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
        ``modularity`` on that view and ``dl`` (description length on the closure, nats);
        ``signature`` and ``kept_dl_unit`` (the signature proposal and step 4's kept proposal: their
        description lengths on the unit graph, nats); ``n_closure_edges``; ``inputs_regrouped`` (step 7
        kept) and, when the regrouping changed anything, ``path_graph_dl`` (``kept`` / ``regrouped``: the
        description lengths on the input–unit path-count graph, nats).
    """
    seed = check_seed(seed)
    if isinstance(n_restarts, bool) or not isinstance(n_restarts, (int, np.integer)) or n_restarts < 1:
        raise ValueError(f"n_restarts must be an int >= 1, got {n_restarts!r}")
    work = prepare(graph, condense=True)
    n = work.n_units
    unit_g = _gt.to_graph_tool(n, work.src, work.dst)
    csrc, cdst = closure_edges(work)
    clos_g = _gt.to_graph_tool(n, csrc, cdst)
    stats = {"n_units_used": n, "n_closure_edges": int(csrc.size)}
    best, stats_labels = None, {}
    for view, g in (("unit", unit_g), ("closure", clos_g)):
        labels, q = _gt.best_modularity_partition(g, seed=seed, n_restarts=int(n_restarts))
        stats_labels[view] = labels
        dl = _gt.blockmodel_dl(clos_g, labels)
        stats[view] = {"modularity": q, "dl": dl, "n_modules": int(labels.max()) + 1}
        if best is None or dl < best[0] - 1e-9:
            best = (dl, view, labels)
    sig = signature_partition(work, stats_labels["closure"])
    kept_dl = _gt.blockmodel_dl(unit_g, best[2])
    sig_dl = _gt.blockmodel_dl(unit_g, sig)
    stats["kept_dl_unit"] = kept_dl
    stats["signature"] = {"dl_unit": sig_dl, "n_modules": int(sig.max()) + 1}
    chosen, labels = best[1], best[2]
    if sig_dl < kept_dl - 1e-9:
        chosen, labels = "signature", sig
    stats["chosen"] = chosen
    regrouped = regroup_inputs(work, labels, dl=lambda l: _gt.blockmodel_dl(clos_g, l))
    stats["inputs_regrouped"] = False
    if regrouped.tolist() != labels.tolist():
        paths = input_path_counts(work)
        before, after = _path_graph_dl(work, paths, labels), _path_graph_dl(work, paths, regrouped)
        stats["path_graph_dl"] = {"kept": before, "regrouped": after}
        if after < before - 1e-9:
            labels, stats["inputs_regrouped"] = regrouped, True
    return Partition(spread(graph, work, labels), method="subfunctions", seed=seed, stats=stats)
