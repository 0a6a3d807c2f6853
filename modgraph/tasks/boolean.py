"""Boolean tasks as a DAG of named sub-functions: spec -> truth table + ground truth.

A spec (JSON, ``data/tasks/*.json``, documented in ``docs/trainers.md``) names the inputs,
defines sub-functions over inputs and other sub-functions with a gate, and lists the
function computed by each output (outputs may reuse a function)::

    {"id": "[4,2,4]", "name": "input-separable",
     "inputs": ["x1", "x2", "x3", "x4"],
     "functions": {"a": {"gate": "XOR", "args": ["x1", "x2"]}, ...},
     "outputs": ["a", "na", "b", "nb"]}

Gates: ``AND``, ``OR``, ``XOR`` (parity), ``XNOR`` (≥ 2 arguments), ``NOT`` (1 argument) and
``TABLE`` with ``"minterms"``: the bit strings (first argument = first bit) on which the
gate is 1. The truth table uses the row order of arXiv 2305.18402 §1.1: row r is the binary
code of r with the first input as the most significant bit.

Examples
--------
>>> task = parse_task({"id": "[2,1,1]", "inputs": ["x1", "x2"],
...                    "functions": {"f": {"gate": "AND", "args": ["x1", "x2"]}},
...                    "outputs": ["f"]})
>>> task.truth_table()[1][:, 0].tolist()
[0.0, 0.0, 0.0, 1.0]
>>> task.ground_truth()["sub_functions"][0]["inputs"]
[0, 1]
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modgraph.errors import FormatError
from modgraph.tasks.truth import GATES, ground_truth, truth_table

__all__ = ["BooleanTask", "parse_task", "read_task", "GATES"]

_KEYS = {"id", "name", "aliases", "description", "inputs", "functions", "outputs", "output_groups",
         "training"}


@dataclass(frozen=True, eq=False)
class BooleanTask:
    """A validated Boolean task; build it with :func:`parse_task` or :func:`read_task`.

    ``functions`` maps each sub-function name to ``(gate, args, minterms)`` in a
    topological order (arguments before their users).
    """

    id: str
    name: str
    inputs: tuple[str, ...]
    functions: dict
    outputs: tuple[str, ...]
    output_groups: tuple[tuple[int, ...], ...] | None
    spec: dict

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    def truth_table(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Y)`` as float32 arrays of shapes (2^n, n) and (2^n, m), values 0/1."""
        return truth_table(self)

    def ground_truth(self) -> dict:
        """The plain-JSON ground-truth structure (format in ``docs/trainers.md``)."""
        return ground_truth(self)


def read_task(path) -> BooleanTask:
    """Read and validate a JSON task spec file."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except OSError as err:
        raise FormatError(path, "file", "a readable task spec", str(err)) from err
    except ValueError as err:
        raise FormatError(path, "file", "valid JSON", str(err)) from err
    return parse_task(spec, source=path)


def parse_task(spec: dict, *, source=None) -> BooleanTask:
    """Validate a spec dict; every defect raises a :class:`FormatError` naming its place."""
    where = str(source) if source is not None else "<task spec>"
    if not isinstance(spec, dict):
        raise FormatError(where, "top level", "a JSON object", type(spec).__name__)
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise FormatError(where, f"key {unknown[0]!r}", "one of " + ", ".join(sorted(_KEYS)), "an unknown key")
    inputs = _inputs(spec.get("inputs"), where)
    raw = spec.get("functions", {})
    if not isinstance(raw, dict):
        raise FormatError(where, "functions", "an object name -> {gate, args}", type(raw).__name__)
    functions = {}
    for name, body in raw.items():
        if name in inputs:
            raise FormatError(where, f"functions.{name}", "a name different from every input", "an input's name")
        functions[name] = _function(name, body, where)
    order = _topological(functions, set(inputs), where)
    outputs = spec.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        raise FormatError(where, "outputs", "a non-empty list of function or input names", repr(outputs))
    for k, out in enumerate(outputs):
        if out not in functions and out not in inputs:
            raise FormatError(where, f"outputs[{k}]", "a defined function or input name", f"undefined name {out!r}")
    groups = _groups(spec.get("output_groups"), len(outputs), where)
    _training(spec.get("training", {}), where)
    ident = spec.get("id")
    if not isinstance(ident, str) or not ident:
        raise FormatError(where, "id", "a task identifier string such as '[4,2,4]'", repr(ident))
    return BooleanTask(id=ident, name=str(spec.get("name", ident)), inputs=tuple(inputs),
                       functions={n: functions[n] for n in order}, outputs=tuple(outputs),
                       output_groups=groups, spec=json.loads(json.dumps(spec)))


def _inputs(inputs, where) -> list[str]:
    if isinstance(inputs, int) and not isinstance(inputs, bool):
        inputs = [f"x{i + 1}" for i in range(inputs)]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) and s for s in inputs):
        raise FormatError(where, "inputs", "a count or a non-empty list of names", repr(inputs))
    if len(set(inputs)) != len(inputs):
        raise FormatError(where, "inputs", "distinct names", repr(inputs))
    if len(inputs) > 20:
        raise FormatError(where, "inputs", "at most 20 inputs (the full truth table is built)", str(len(inputs)))
    return inputs


def _function(name, body, where):
    place = f"functions.{name}"
    if not isinstance(body, dict):
        raise FormatError(where, place, "an object {gate, args}", type(body).__name__)
    gate = body.get("gate")
    if gate not in GATES:
        raise FormatError(where, f"{place}.gate", "one of " + ", ".join(GATES), repr(gate))
    args = body.get("args")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise FormatError(where, f"{place}.args", "a list of names", repr(args))
    lo, hi = (1, 1) if gate == "NOT" else (2, None) if gate != "TABLE" else (1, None)
    if len(args) < lo or (hi is not None and len(args) > hi):
        want = "exactly 1 argument" if gate == "NOT" else f"at least {lo} arguments"
        raise FormatError(where, f"{place}.args", f"{want} for {gate}", f"{len(args)} (wrong arity)")
    minterms = None
    if gate == "TABLE":
        minterms = _minterms(body.get("minterms"), len(args), f"{place}.minterms", where)
    elif "minterms" in body:
        raise FormatError(where, f"{place}.minterms", "minterms only with gate TABLE", f"gate {gate}")
    return gate, tuple(args), minterms


def _minterms(terms, arity, place, where) -> frozenset:
    if not isinstance(terms, list):
        raise FormatError(where, place, "a list of bit strings", repr(terms))
    out = set()
    for j, t in enumerate(terms):
        if not isinstance(t, str) or t == "":
            raise FormatError(where, f"{place}[{j}]", f"a bit string of length {arity}", "an empty minterm string"
                              if t == "" else repr(t))
        if len(t) != arity or set(t) - {"0", "1"}:
            raise FormatError(where, f"{place}[{j}]", f"a bit string of {arity} characters 0/1 (wrong arity)",
                              repr(t))
        out.add(int(t, 2))
    return frozenset(out)


def _topological(functions, inputs, where) -> list[str]:
    """Depth-first order, arguments first; undefined names and cycles raise."""
    state, order = {}, []

    def visit(name, path):
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = path[path.index(name):] + [name]
            raise FormatError(where, f"functions.{name}", "an acyclic definition", "a cycle " + " -> ".join(cycle))
        state[name] = "open"
        for k, arg in enumerate(functions[name][1]):
            if arg in inputs:
                continue
            if arg not in functions:
                raise FormatError(where, f"functions.{name}.args[{k}]", "a defined function or input name",
                                  f"undefined name {arg!r}")
            visit(arg, path + [name])
        state[name] = "done"
        order.append(name)

    for name in functions:
        visit(name, [])
    return order


def _training(block, where) -> None:
    """``training``: lr / batch_size / epochs, each a positive number or {"<hidden layers>": v},
    where v is a positive number or {"<hidden width>" or "*": number} (see trainers.config)."""
    kinds = {"lr": (float, "a positive number"), "batch_size": (int, "a positive integer"),
             "epochs": (int, "a positive integer")}
    if not isinstance(block, dict):
        raise FormatError(where, "training", "an object {lr, batch_size, epochs}", type(block).__name__)
    for key, value in block.items():
        if key not in kinds:
            raise FormatError(where, f"training.{key}", "one of " + ", ".join(kinds), "an unknown key")
        kind, want = kinds[key]
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for depth, v in items:
            place = f"training.{key}" + (f".{depth}" if depth is not None else "")
            if depth is not None and not (isinstance(depth, str) and depth.isdigit()):
                raise FormatError(where, place, "a number of hidden layers as key, such as \"2\"", repr(depth))
            for width, w in (v.items() if depth is not None and isinstance(v, dict) else [(None, v)]):
                at = place + (f".{width}" if width is not None else "")
                if width is not None and not (isinstance(width, str) and (width.isdigit() or width == "*")):
                    raise FormatError(where, at, "a hidden width or \"*\" as key, such as \"36\"", repr(width))
                if isinstance(w, bool) or not isinstance(w, (int, float)) or w <= 0 or (kind is int and w != int(w)):
                    raise FormatError(where, at, want, repr(w))


def _groups(groups, m, where):
    if groups is None:
        return None
    flat = [k for g in groups for k in g] if isinstance(groups, list) and all(
        isinstance(g, list) and g for g in groups) else None
    if flat is None or sorted(flat) != list(range(m)) or not all(isinstance(k, int) for k in flat):
        raise FormatError(where, "output_groups", f"a partition of the output indices 0..{m - 1} into lists",
                          repr(groups))
    return tuple(tuple(g) for g in groups)
