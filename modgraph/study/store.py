"""The study folder: one folder per run (written atomically as the run finishes) and the tables.

``runs/<slug>-<hash>/result.json`` is written last, atomically, and marks the run finished;
a rerun skips every run whose ``result.json`` carries the same content key. ``runs.csv`` and
``runs.jsonl`` are always rebuilt from the stored results, so they cannot disagree with them.
``runs.csv`` holds no timings, so an interrupted-and-resumed study gives the same bytes as an
uninterrupted one; ``runs.jsonl`` adds ``seconds`` and ``worker``.

Examples
--------
>>> run_dir_name("runs/a/network.h5 | analysis | sbm | {} | seed 1 | view None | norm None")[:22]
'runs__a__network.h5-sb'
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from pathlib import Path

from modgraph.io import atomic_path

__all__ = ["SCHEMA", "run_dir_name", "store_result", "load_result", "finished", "table_rows", "write_tables",
           "LEAD_COLUMNS", "clear_partials"]

SCHEMA = "modgraph-study-run/1"
#: First columns of runs.csv, in order; tags and the method's numbers follow.
LEAD_COLUMNS = ("run_id", "path", "relpath", "kind", "method", "label", "options", "seed", "view", "edge_norm",
                "status", "error")
_BULKY = ("labels", "layer_modules", "widths")          # in result.json, not in the tables


def run_dir_name(run_id: str) -> str:
    """A readable, unique folder name: the run's path and method, then 10 hex digits of its id."""
    rel, _, rest = run_id.partition(" | ")
    parts = rest.split(" | ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", rel.replace("/", "__"))[-80:]
    method = re.sub(r"[^A-Za-z0-9._-]+", "_", parts[1] if len(parts) > 1 else "")
    return f"{slug}-{method}-{hashlib.sha256(run_id.encode()).hexdigest()[:10]}"


def _run_record(run, out: dict) -> dict:
    tags = dict(run.tags)
    return {"schema": SCHEMA, "run_id": run.run_id, "key": run.key, "path": run.path, "relpath": run.relpath,
            "kind": run.kind, "method": run.method, "label": run.label,
            "options": json.dumps(run.options, sort_keys=True), "seed": run.seed,
            "view": run.view or "", "edge_norm": run.edge_norm or "", "tags": tags,
            "seconds": out["seconds"], "worker": out.get("worker"), "result": out["result"]}


def store_result(root, run, out: dict) -> Path:
    """Write the run's files, then its ``result.json`` (the marker), each atomically."""
    folder = Path(root) / "runs" / run_dir_name(run.run_id)
    for name, data in out["files"].items():
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(data)
    with atomic_path(folder / "result.json") as tmp:
        tmp.write_text(json.dumps(_run_record(run, out), indent=1))
    return folder


def load_result(root, run) -> dict | None:
    """The stored record of ``run``, or None when absent, unreadable or for another content key."""
    path = Path(root) / "runs" / run_dir_name(run.run_id) / "result.json"
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("schema") == SCHEMA and rec.get("key") == run.key else None


def finished(root, runs) -> dict:
    """{run_id: stored record} for every run already stored with its current content key."""
    return {r.run_id: rec for r in runs if (rec := load_result(root, r)) is not None}


def clear_partials(root) -> int:
    """Remove the temporary ``.*.part`` files a killed study left in its run folders."""
    n = 0
    for p in (Path(root) / "runs").glob("*/.*.part"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def table_rows(records, *, timings: bool = False) -> list[dict]:
    """One flat row per stored record, in the given order; ``timings`` adds seconds and worker."""
    rows = []
    for rec in records:
        res = {k: v for k, v in rec["result"].items() if k not in _BULKY}
        row = {k: rec[k] for k in LEAD_COLUMNS if k in rec}
        row.update(status=res.pop("status"), error=res.pop("error"))
        row.update(rec["tags"])
        row.update(res)
        if timings:
            row.update(seconds=rec["seconds"], worker=rec["worker"])
        rows.append(row)
    return rows


def _csv(rows) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_tables(root, records) -> list[Path]:
    """``runs.csv`` (no timings) and ``runs.jsonl`` (with them), atomically, from stored records."""
    root = Path(root)
    with atomic_path(root / "runs.csv") as tmp:
        tmp.write_text(_csv(table_rows(records)))
    with atomic_path(root / "runs.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in table_rows(records, timings=True)))
    return [root / "runs.csv", root / "runs.jsonl"]
