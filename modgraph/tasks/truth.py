"""Truth tables and ground-truth structure of a validated :class:`~modgraph.tasks.boolean.BooleanTask`.

The ground truth is plain JSON (format ``"modgraph-ground-truth"`` 1.0, documented in
``docs/trainers.md``), written into an export's metadata, so modgraph can score a file it did not train.
Unit indices are 0-based positions in the network's input and output layers.
"""
from __future__ import annotations

import numpy as np

__all__ = ["GATES", "truth_table", "ground_truth", "GROUND_TRUTH_FORMAT", "GROUND_TRUTH_VERSION"]

GROUND_TRUTH_FORMAT = "modgraph-ground-truth"
GROUND_TRUTH_VERSION = "1.0"


def _table(args, minterms):
    code = np.zeros(args[0].shape, dtype=np.int64)
    for a in args:                       # first argument = most significant bit
        code = (code << 1) | a.astype(np.int64)
    return np.isin(code, sorted(minterms))


#: Gate name -> function(list of bool arrays, minterms) -> bool array.
GATES = {
    "AND": lambda args, mt: np.logical_and.reduce(args),
    "OR": lambda args, mt: np.logical_or.reduce(args),
    "XOR": lambda args, mt: np.logical_xor.reduce(args),
    "XNOR": lambda args, mt: ~np.logical_xor.reduce(args),
    "NOT": lambda args, mt: ~args[0],
    "TABLE": _table,
}


def _values(task) -> dict[str, np.ndarray]:
    n = task.n_inputs
    rows = np.arange(2 ** n, dtype=np.int64)
    vals = {name: ((rows >> (n - 1 - i)) & 1).astype(bool) for i, name in enumerate(task.inputs)}
    for name, (gate, args, minterms) in task.functions.items():      # topological order
        vals[name] = GATES[gate]([vals[a] for a in args], minterms)
    return vals


def truth_table(task) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)``: all 2^n rows (row r = binary code of r, first input most significant)."""
    vals = _values(task)
    x = np.stack([vals[i] for i in task.inputs], axis=1).astype(np.float32)
    y = np.stack([vals[o] for o in task.outputs], axis=1).astype(np.float32)
    return x, y


def _supports(task) -> tuple[dict, dict]:
    """Input support (set of input indices) and level of every input and function."""
    index = {name: i for i, name in enumerate(task.inputs)}
    support = {name: {i} for name, i in index.items()}
    level = {name: 0 for name in index}
    for name, (_, args, _) in task.functions.items():
        support[name] = set().union(*(support[a] for a in args))
        level[name] = 1 + max(level[a] for a in args)
    return support, level


def _depends(task) -> dict[str, set]:
    """Every function (and input) each name depends on, itself included."""
    deps = {name: {name} for name in task.inputs}
    for name, (_, args, _) in task.functions.items():
        deps[name] = {name}.union(*(deps[a] for a in args))
    return deps


def _partition(keys: list) -> list[list[int]]:
    """Group positions with equal keys, groups ordered by first position."""
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return list(groups.values())


def ground_truth(task) -> dict:
    """The ground-truth structure of ``task`` as a JSON-ready dict.

    - ``sub_functions``: per function (topological order) its gate, arguments, ``level``
      (inputs are level 0; a function is 1 + its deepest argument), ``inputs`` (input
      support), ``outputs`` (the outputs that use it, directly or through other functions),
      ``consumers`` (functions using it directly) and ``n_output_functions`` (how many
      distinct output functions use it: ≥ 2 means a reused sub-function).
    - ``input_groups``: inputs with the same set of users (functions and outputs whose
      support holds them) form one group; unused inputs are listed apart.
    - ``output_groups``: the spec's ``output_groups`` when given, else outputs computing
      the same function.
    """
    support, level = _supports(task)
    deps = _depends(task)
    out_deps = [deps[o] for o in task.outputs]
    used = set().union(*out_deps)
    subs = []
    for name, (gate, args, minterms) in task.functions.items():
        outs = [k for k, d in enumerate(out_deps) if name in d]
        sub = {"name": name, "gate": gate, "args": list(args), "level": level[name],
               "inputs": sorted(support[name]), "outputs": outs,
               "consumers": [f for f, (_, a, _) in task.functions.items() if name in a],
               "n_output_functions": len({task.outputs[k] for k in outs})}
        if minterms is not None:
            sub["minterms"] = [format(t, f"0{len(args)}b") for t in sorted(minterms)]
        subs.append(sub)
    users = [frozenset([f for f in task.functions if f in used and i in support[f]]
                       + [f"y{k}" for k, o in enumerate(task.outputs) if i in support[o]])
             for i in range(task.n_inputs)]
    unused = [i for i, u in enumerate(users) if not u]
    in_groups = [g for g in _partition(users) if users[g[0]]]
    out_groups = ([list(g) for g in task.output_groups] if task.output_groups is not None
                  else _partition(list(task.outputs)))
    return {"format": GROUND_TRUTH_FORMAT, "version": GROUND_TRUTH_VERSION, "task": task.id,
            "name": task.name,
            "inputs": list(task.inputs), "outputs": [f"y{k + 1}" for k in range(task.n_outputs)],
            "output_functions": list(task.outputs), "sub_functions": subs,
            "n_levels": max([level[f] for f in used if f in task.functions], default=0),
            "input_groups": in_groups, "unused_inputs": unused, "output_groups": out_groups}
