"""Compare a recovered structure with a task's ground truth (Neural Sculpting spec §6).

A :class:`GroundTruth` holds the ground-truth input groups, output-function groups and
sub-functions of a task, and the criteria by which its published success rates are
counted. :func:`score` evaluates every criterion of spec §6 that applies, each as
``{"success": bool, "evidence": {...}}``, plus NMI/ARI of the input and output groupings.

The criteria (arXiv 2305.18402; operational definitions of ``neural-sculpting.md`` §6):

- ``input_separability``: the partition of the surviving input units induced by module
  membership equals the ground-truth input groups (restricted to surviving inputs).
- ``output_subfunction``: the partition of the outputs equals the output-function groups.
- ``reuse``: all inputs in one module that also holds every first-hidden-layer unit; the
  outputs split into exactly the output-function groups; no output module is that module.
- ``hidden_separability``: no surviving hidden unit has directed paths to outputs of two
  different output groups (a property of the graph, not of the partition).
- ``single_intermediate``: some hidden layer is entirely one module that holds no input.
- ``all_modules``: ≥ 3 hidden layers — input separability, a hidden layer entirely in one
  module holding neither inputs nor outputs, and separated output modules; 2 hidden layers
  (too shallow) — input separability and all outputs in one module together with an
  entire hidden layer (the intermediate).
- ``one_module``: exactly one module overall.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from modgraph.errors import ModgraphError
from modgraph.graph import UnitGraph
from modgraph.hierarchy import ModuleDAG, module_dag, reachability
from modgraph.metrics import ari, nmi
from modgraph.partition import Partition

__all__ = ["GroundTruth", "score", "CRITERIA", "truth_from_dict", "truth_from_metadata", "read_truth", "criteria_for"]


@dataclass(frozen=True)
class GroundTruth:
    """The ground-truth structure of a task, as indices into the network's inputs and outputs.

    Attributes
    ----------
    n_inputs, n_outputs : int
    input_groups : list of list of int
        The ground-truth input groups (spec §1.3), empty groups dropped.
    output_groups : list of list of int
        Outputs computing the same function together (all copies of one function).
    success : list of str
        The criteria whose conjunction counts as success for this task (spec §6/§7).
    report : list of str
        Further criteria worth reporting for this task family.
    sub_functions : list of dict
        Named sub-functions with their input support, the outputs using them and their level.
    """

    n_inputs: int
    n_outputs: int
    input_groups: list
    output_groups: list
    success: list = field(default_factory=list)
    report: list = field(default_factory=list)
    sub_functions: list = field(default_factory=list)
    task: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


#: Task family (by task name prefix) -> (criteria counted as success, further criteria reported).
#: Exemplar mapping as recommended in spec §6; sweeps as in the published figures (§7.1).
_FAMILIES = [
    ("input-separable", ["input_separability"], ["output_subfunction"]),
    ("reused", ["reuse"], ["input_separability", "output_subfunction"]),
    ("reuse-", ["reuse"], ["input_separability", "output_subfunction"]),
    ("both", ["input_separability", "output_subfunction"], []),
    ("mnist-task1", ["input_separability", "output_subfunction"], []),
    ("none", ["one_module"], ["input_separability"]),
    ("overlap-", [], ["input_separability", "output_subfunction", "hidden_separability"]),
    ("hierarchy-", ["all_modules"], ["input_separability", "single_intermediate", "output_subfunction"]),
]


def criteria_for(task_name: str) -> tuple[list, list]:
    """(success criteria, reported criteria) for a task name such as ``"both"`` or ``"reuse-u2"``.

    >>> criteria_for("reuse-u2")
    (['reuse'], ['input_separability', 'output_subfunction'])
    """
    for prefix, success, report in _FAMILIES:
        if task_name == prefix or (prefix.endswith("-") and task_name.startswith(prefix)):
            return list(success), list(report)
    return [], ["input_separability", "output_subfunction"]


def read_truth(path) -> GroundTruth:
    """A ground truth from a task spec (``data/tasks/*.json``) or a ground-truth JSON file.

    A document with ``functions`` is a task spec: its ground truth is derived
    (:mod:`modgraph.tasks`, pure numpy); anything else is read by :func:`truth_from_dict`.
    """
    import json

    from modgraph.errors import FormatError
    from modgraph.tasks import parse_task

    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as err:
        raise FormatError(path, "file", "a readable JSON file", err.strerror or str(err)) from err
    except json.JSONDecodeError as err:
        raise FormatError(path, f"line {err.lineno}", "a JSON document", err.msg) from err
    except UnicodeDecodeError as err:
        raise FormatError(path, f"byte {err.start}", "UTF-8 JSON text", str(err.reason)) from err
    if isinstance(doc, dict) and "functions" in doc:
        task = parse_task(doc, source=str(path))
        return truth_from_dict(task.ground_truth(), task_name=task.name, source=str(path))
    return truth_from_dict(doc, source=str(path))


def truth_from_dict(gt: dict, *, task_name: str | None = None, source: str = "<ground truth>") -> GroundTruth:
    """Read the ``modgraph-ground-truth`` JSON written by the trainers (``docs/trainers.md``)."""
    from modgraph.errors import FormatError

    if not isinstance(gt, dict) or gt.get("format") != "modgraph-ground-truth":
        raise FormatError(source, "ground truth", "a 'modgraph-ground-truth' JSON object",
                          repr(gt.get("format")) if isinstance(gt, dict) else type(gt).__name__)
    if str(gt.get("version", "")).split(".")[0] != "1":
        raise FormatError(source, "ground truth 'version'", "1.x", repr(gt.get("version")))
    for key in ("inputs", "outputs", "input_groups", "output_groups"):
        if not isinstance(gt.get(key), list):
            raise FormatError(source, f"ground truth {key!r}", "a list", repr(gt.get(key)))
    name = task_name or gt.get("name") or str(gt.get("task", ""))
    success, report = criteria_for(name)
    return GroundTruth(len(gt["inputs"]), len(gt["outputs"]), [list(g) for g in gt["input_groups"]],
                       [list(g) for g in gt["output_groups"]], success, report,
                       list(gt.get("sub_functions", [])), name)


def truth_from_metadata(metadata: dict, *, source: str = "<network>") -> GroundTruth | None:
    """The ground truth a trainer wrote into an export's metadata, or None when there is none."""
    gt = metadata.get("ground_truth")
    if gt is None:
        return None
    task = metadata.get("task")
    name = task.get("name") if isinstance(task, dict) else None
    return truth_from_dict(gt, task_name=name, source=source)


@dataclass(frozen=True)
class _View:
    """What every criterion needs, computed once."""

    graph: UnitGraph
    labels: np.ndarray
    dag: ModuleDAG
    truth: GroundTruth

    @property
    def n_hidden_layers(self) -> int:
        return self.graph.n_layers - 2

    def layer_labels(self, l: int) -> np.ndarray:
        return self.labels[self.graph.units_in_layer(l)]

    def input_modules(self) -> set:
        return {int(x) for x in self.labels[self.graph.input_units()] if x >= 0}

    def output_modules(self) -> set:
        return {int(x) for x in self.labels[self.graph.output_units()] if x >= 0}

    def groups(self, units: np.ndarray) -> list:
        """Original unit indices of ``units`` grouped by module (unlabelled units left out)."""
        lab = self.labels[units]
        return [sorted(self.graph.index[units[lab == m]].tolist()) for m in np.unique(lab[lab >= 0])]


def _same_partition(a, b) -> bool:
    return {frozenset(g) for g in a if g} == {frozenset(g) for g in b if g}


def _restrict(groups, alive) -> list:
    return [sorted(set(g) & alive) for g in groups if set(g) & alive]


def _input_separability(v: _View):
    found = v.groups(v.graph.input_units())
    alive = {i for g in found for i in g}
    expected = _restrict(v.truth.input_groups, alive)
    return _same_partition(found, expected), {"found": found, "expected": expected}


def _output_subfunction(v: _View):
    found = v.groups(v.graph.output_units())
    expected = [sorted(g) for g in v.truth.output_groups]
    return _same_partition(found, expected), {"found": found, "expected": expected}


def _whole_layers(v: _View) -> dict:
    """hidden layer -> the module holding all of its surviving units (only when there is one)."""
    out = {}
    for l in range(1, v.graph.n_layers - 1):
        lab = set(v.layer_labels(l).tolist())
        if len(lab) == 1 and -1 not in lab:
            out[l] = lab.pop()
    return out


def _reuse(v: _View):
    ins, first = set(v.labels[v.graph.input_units()].tolist()), set(v.layer_labels(1).tolist())
    one = len(ins) == 1 and -1 not in ins
    module = next(iter(ins)) if one else None
    holds_first = one and first == {module}
    outputs_ok, ev = _output_subfunction(v)
    distinct = module not in v.output_modules()
    ok = bool(one and holds_first and outputs_ok and distinct)
    return ok, {"inputs_in_one_module": one, "module_holds_first_hidden_layer": holds_first,
                "outputs_split_by_function": outputs_ok, "output_modules_differ": distinct,
                "output_groups": ev["found"]}


def _hidden_separability(v: _View):
    g = v.graph
    reach = reachability(g, towards="outputs")              # (units, outputs)
    outs = g.output_units()
    out_index = g.index[outs]
    end = np.zeros(g.n_units, bool)
    end[g.input_units()], end[outs] = True, True
    hidden = np.flatnonzero(~end)
    mixed = []
    for u in hidden:
        hit = set(out_index[reach[u]].tolist())
        if sum(1 for grp in v.truth.output_groups if hit & set(grp)) > 1:
            mixed.append([int(g.layer[u]), int(g.index[u])])
    return not mixed, {"units_reaching_several_groups": mixed, "n_hidden_units": int(hidden.size)}


def _single_intermediate(v: _View):
    whole = _whole_layers(v)
    hits = {l: m for l, m in whole.items() if m not in v.input_modules()}
    return bool(hits), {"whole_layer_modules": {str(l): m for l, m in whole.items()},
                        "intermediate_layers": sorted(hits)}


def _all_modules(v: _View):
    sep, ev_in = _input_separability(v)
    whole = _whole_layers(v)
    ins, outs = v.input_modules(), v.output_modules()
    if v.n_hidden_layers >= 3:
        middle = [l for l, m in whole.items() if m not in ins and m not in outs]
        out_ok, _ = _output_subfunction(v)
        ok = sep and bool(middle) and out_ok
        ev = {"input_separability": sep, "intermediate_only_layers": middle, "outputs_separated": out_ok}
    else:
        single = len(outs) == 1
        m = next(iter(outs)) if single else None
        middle = [l for l, mm in whole.items() if single and mm == m and m not in ins]
        ok = sep and single and bool(middle)
        ev = {"input_separability": sep, "outputs_in_one_module": single, "intermediate_layers": middle}
    return bool(ok), ev


def _one_module(v: _View):
    n = len(v.dag.modules)
    return n == 1, {"n_modules": n}


CRITERIA = {
    "input_separability": _input_separability,
    "output_subfunction": _output_subfunction,
    "reuse": _reuse,
    "hidden_separability": _hidden_separability,
    "single_intermediate": _single_intermediate,
    "all_modules": _all_modules,
    "one_module": _one_module,
}


def _grouping_scores(v: _View, units: np.ndarray, groups) -> dict:
    truth = {i: k for k, grp in enumerate(groups) for i in grp}
    keep = [u for u in units if v.labels[u] >= 0 and int(v.graph.index[u]) in truth]
    if not keep:
        return {"nmi": None, "ari": None}
    a = [truth[int(v.graph.index[u])] for u in keep]
    b = v.labels[keep]
    return {"nmi": float(nmi(a, b)), "ari": float(ari(a, b))}


def score(graph: UnitGraph, partition: Partition, truth: GroundTruth, *, criteria=None,
          dag: ModuleDAG | None = None) -> dict:
    """Score ``partition`` (labels over the units of ``graph``) against ``truth``.

    Returns ``{"success": bool, "criteria": {name: {"success", "evidence"}}, "input": {nmi, ari},
    "output": {nmi, ari}}``; ``success`` is the conjunction of ``truth.success``.
    """
    n_in = graph.widths[0]
    n_out = graph.output_units().size if graph.is_dag else graph.widths[-1]
    if graph.is_dag:
        outs = [name for name, kind in zip(graph.group_names, graph.group_kinds) if kind == "output"]
        if len(outs) != 1:
            raise ModgraphError(f"scoring against a ground truth needs one output group (its channels are the "
                                f"truth's output indices); this {graph.view} view has {len(outs)}: "
                                f"{', '.join(outs) or 'none'}")
    if n_in != truth.n_inputs or n_out != truth.n_outputs:
        raise ValueError(f"the ground truth is for {truth.n_inputs} inputs and {truth.n_outputs} outputs, "
                         f"the network has {n_in} and {n_out}")
    names = list(dict.fromkeys(criteria if criteria is not None else truth.success + truth.report))
    unknown = [n for n in names if n not in CRITERIA]
    if unknown:
        raise ValueError(f"unknown criteria {unknown}; choose from {', '.join(CRITERIA)}")
    v = _View(graph, np.asarray(partition.labels), dag or module_dag(graph, partition), truth)
    results = {}
    for name in names:
        ok, evidence = CRITERIA[name](v)
        results[name] = {"success": bool(ok), "evidence": evidence}
    success = all(results[n]["success"] for n in truth.success if n in results) if truth.success else None
    return {"success": success, "success_criteria": list(truth.success), "criteria": results,
            "input": _grouping_scores(v, graph.input_units(), truth.input_groups),
            "output": _grouping_scores(v, graph.output_units(), truth.output_groups)}
