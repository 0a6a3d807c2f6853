"""``modgraph analyze`` with several files or methods: an in-memory study on the study engine.

:func:`files_spec` turns a list of files, methods, a seed, options and a ground truth into a
:class:`~modgraph.study.spec.StudySpec` whose root is the files' common folder, so every run's id
carries the file's path relative to it: ``runs/a/network.h5`` and ``runs/b/network.h5`` are two
runs, never one folder overwriting the other. :func:`analyze_files` runs it with
:func:`~modgraph.study.run_study` (stored atomically, resumable, a bad file is an error row) and
writes ``summary.csv``, rebuilt from the stored runs like ``runs.csv``.

Examples
--------
>>> import pathlib, tempfile
>>> from modgraph.io import save
>>> from modgraph.testing import random_network
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for sub in ("a", "b"):
...     save(random_network([3, 4, 2], seed=0), d / sub / "network.h5")
>>> spec = files_spec([d / "a/network.h5", d / "b/network.h5"], ["modularity"], seed=1)
>>> [r.relpath for r in plan_runs(spec)]
['a/network.h5', 'b/network.h5']
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import replace
from pathlib import Path

from modgraph.io import atomic_path
from modgraph.study.driver import run_study
from modgraph.study.spec import StudySpec, parse_spec, plan_runs
from modgraph.study.store import run_dir_name

__all__ = ["files_spec", "analyze_files", "summary_rows", "write_summary", "options_for_method",
           "stored_analysis"]

#: summary.csv columns before the method's own numbers (criteria, NMI/ARI); path, status, error close it.
_LEAD = ("file", "source_format", "method", "seed", "units", "edges", "modules", "success")
_TAIL = ("path", "status", "error")
_LEFT_OUT = {"labels", "layer_modules", "widths", "graph_sha", "labels_sha", "status", "error"}


def options_for_method(options: dict, method: str) -> dict:
    """The options of a flat ``--option`` dict that apply to ``method``: every plain ``KEY`` and
    each ``METHOD.KEY`` of this method, with the prefix removed. (Not the options a method
    declares: that is :func:`modgraph.detect.method_options`.)

    >>> options_for_method({"k": 4, "spectral.n_init": 2, "sbm.weighted": True}, "spectral")
    {'k': 4, 'n_init': 2}
    """
    return {k.split(".", 1)[-1]: v for k, v in options.items() if "." not in k or k.startswith(method + ".")}


def _root(files) -> Path:
    parents = [str(Path(f).resolve().parent) for f in files]
    return Path(os.path.commonpath(parents)) if parents else Path(".").resolve()


def files_spec(files, methods, *, seed: int = 1, options: dict | None = None, truth=None,
               pictures: bool = True, name: str = "analyze", view: str | None = None,
               edge_norm: str | None = None) -> StudySpec:
    """A study of every file × method with the one detector ``seed`` (what ``modgraph analyze`` runs).

    ``options`` are ``--option`` pairs (``KEY`` for every method, ``METHOD.KEY`` for one);
    a missing or unreadable file is planned like any other and becomes an error row.
    ``view``/``edge_norm`` (None = the default unit graph) choose the unit graph of a DAG.
    """
    files = [Path(f).resolve() for f in files]
    root = _root(files)
    methods = list(dict.fromkeys(methods))
    doc = {"study": {"name": name, "seeds": [int(seed)], "pictures": bool(pictures)},
           "inputs": [{"path": str(root)}],                 # replaced below: the files as given, no globbing
           "methods": [{"name": m, "options": options_for_method(options or {}, m)} for m in methods]}
    if truth is not None:
        doc["study"]["truth"] = str(Path(truth).resolve())
    if view is not None:
        doc["study"]["views"] = [view]
    if edge_norm is not None:
        doc["study"]["edge_norms"] = [edge_norm]
    spec = parse_spec(doc, source="<modgraph analyze>", base=root)
    return replace(spec, inputs=({"files": [str(f) for f in files], "network": None, "tags": {}, "truth": None},))


def summary_rows(records) -> list[dict]:
    """One compact row per stored run: the file relative to the common folder, the analysis
    numbers, then the full path, status and error."""
    rows = []
    for rec in records:
        res = rec["result"]
        row = {"file": rec["relpath"], "method": rec["label"], "seed": rec["seed"]}
        row.update({k: v for k, v in res.items() if k not in _LEFT_OUT})
        row.update(path=rec["path"], status=res["status"], error=res["error"])
        lead = {k: row.pop(k, "") for k in _LEAD}
        tail = {k: row.pop(k) for k in _TAIL}
        rows.append({**lead, **row, **tail})
    return rows


def write_summary(out, records) -> Path:
    """``summary.csv`` under ``out`` from the stored records, atomically."""
    rows = summary_rows(records)
    keys = list(dict.fromkeys(k for r in rows for k in r)) or list(_LEAD + _TAIL)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path = Path(out) / "summary.csv"
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
    return path


def stored_analysis(out, record) -> dict | None:
    """The ``analysis.json`` a stored ok run left in its folder (None for an error row)."""
    if record["result"]["status"] != "ok":
        return None
    return json.loads((Path(out) / "runs" / run_dir_name(record["run_id"]) / "analysis.json").read_text())


def analyze_files(files, methods, out, *, seed: int = 1, options: dict | None = None, truth=None,
                  workers: int = 1, progress: bool = True, pictures: bool = True, view: str | None = None,
                  edge_norm: str | None = None):
    """Run :func:`files_spec` as a study under ``out`` and add ``summary.csv``; returns the
    :class:`~modgraph.study.driver.Outcome` (its ``records`` in plan order)."""
    spec = files_spec(files, methods, seed=seed, options=options, truth=truth, pictures=pictures, view=view,
                      edge_norm=edge_norm)
    outcome = run_study(spec, out, workers=workers, progress=progress)
    write_summary(out, outcome.records)
    return outcome
