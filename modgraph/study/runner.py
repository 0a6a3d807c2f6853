"""One run of a study, as a worker executes it: a task dict in, a result dict out.

:func:`execute` never raises for a failing analysis: the error (type and message) becomes the
result, so a study goes on past a bad file. It returns JSON-ready data and the bytes of the
run's files; the caller (the study driver) writes them, so workers need no shared disk.

Examples
--------
>>> import tempfile, pathlib
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
>>> _ = bad.write_text("not a network")
>>> out = execute({"path": str(bad), "kind": "analysis", "method": "modularity", "options": {},
...                "seed": 0, "view": None, "edge_norm": None, "truth": None, "pictures": False})
>>> out["result"]["status"], out["result"]["error"].split(":")[0]
('error', 'FormatError')
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import time

import numpy as np

__all__ = ["execute", "graph_sha", "labels_sha"]


def graph_sha(graph) -> str:
    """SHA-256 of a unit graph's structure: its units ``(layer, index)`` and edges (weights left out)."""
    h = hashlib.sha256()
    for arr in (graph.layer, graph.index, graph.src, graph.dst):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def labels_sha(labels) -> str:
    """SHA-256 of canonical labels (two partitions agree exactly when their hashes do)."""
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()[:16]


def _view_options(task) -> dict:
    from modgraph.analyze import analyze_network

    extra = {k: task[k] for k in ("view", "edge_norm") if task.get(k) is not None}
    params = inspect.signature(analyze_network).parameters
    missing = [k for k in extra if k not in params]
    if missing:
        raise ValueError(f"{missing[0]} {extra[missing[0]]!r} asked, but this modgraph has no {missing[0]} "
                         f"choice; leave study.{missing[0]}s out")
    return extra


def _layer_modules(analysis) -> list[dict]:
    """Per layer of the condensed graph: units per module (the aggregated picture's data)."""
    g, labels = analysis.graph, analysis.partition.labels
    out = []
    for l in range(g.n_layers):
        mods, counts = np.unique(labels[g.layer == l], return_counts=True)
        out.append({str(int(m)): int(c) for m, c in zip(mods, counts)})
    return out


def _analysis(task) -> tuple[dict, dict]:
    from modgraph.analyze import analyze_network, render_analysis, summary_row
    from modgraph.io import load
    from modgraph.score import read_truth

    net = load(task["path"])
    a = analyze_network(net, method=task["method"], seed=task["seed"], truth=None if task["truth"] is None else read_truth(task["truth"]),
                        name=os.path.basename(task["path"]), **_view_options(task), **task["options"])
    row = summary_row(a)
    row.pop("file", None)
    row.update(graph_sha=graph_sha(a.graph), labels_sha=labels_sha(a.partition.labels))
    extra = {"labels": a.partition.labels.tolist(), "layer_modules": _layer_modules(a),
             "widths": [int((a.graph.layer == l).sum()) for l in range(a.graph.n_layers)]}
    if task.get("pictures"):
        files = render_analysis(a)
    else:
        files = {"analysis.json": json.dumps(a.to_dict(), indent=1).encode()}
    return {**row, **extra}, files


def _significance(task) -> tuple[dict, dict]:
    from modgraph.io import load
    from modgraph.nulls import significance

    sig = task["significance"]
    res = significance(load(task["path"]), method=task["method"], null=sig["null"], n_shuffles=sig["shuffles"],
                       seed=task["seed"], options={**task["options"], **sig["options"]},
                       **{"view": "split", **_view_options(task)})
    row = {"source_format": "", "p": round(float(res.p), 6), "z": "" if res.z is None else round(float(res.z), 4),
           "statistic": res.statistic, "true_value": float(res.true_value), "null": res.null,
           "shuffles": res.n_shuffles}
    return row, {"significance.json": json.dumps(res.to_dict(), indent=1).encode()}


def execute(task: dict) -> dict:
    """Run one task (a :class:`~modgraph.study.spec.Run` as a dict); never raises for a bad input."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")      # graph-tool: one OpenMP thread per worker
    start = time.perf_counter()
    try:
        row, files = (_significance if task["kind"] == "significance" else _analysis)(task)
        row["status"], row["error"] = "ok", ""
    except Exception as err:                            # a failing run is a result: an error row
        row, files = {"status": "error", "error": f"{type(err).__name__}: {err}".replace("\n", " ")}, {}
    return {"result": row, "files": files, "seconds": round(time.perf_counter() - start, 5),
            "worker": os.getpid()}
