"""The numbers of a study report, computed from stored run records only.

Each function takes the records (``result.json`` contents) and returns plain JSON-ready data:
success per method × group, stability across seeds (pairwise ARI), agreement across files of
the same network (exported through different frameworks), significance, run time and errors.

Examples
--------
>>> recs = [{"kind": "analysis", "label": "m", "tags": {"framework": "a"}, "seconds": 1.0,
...          "result": {"status": "ok", "success": 1}},
...         {"kind": "analysis", "label": "m", "tags": {"framework": "b"}, "seconds": 3.0,
...          "result": {"status": "ok", "success": 0}}]
>>> success_by_group(recs)["cells"]
[{'group': 'framework=a', 'label': 'm', 'mean': 1.0, 'n': 1}, {'group': 'framework=b', 'label': 'm', 'mean': 0.0, 'n': 1}]
>>> runtime(recs)
[{'label': 'm', 'runs': 2, 'median_s': 2.0, 'max_s': 3.0, 'total_s': 4.0}]
"""
from __future__ import annotations

import itertools
import statistics

from modgraph.metrics import ari

__all__ = ["success_by_group", "stability", "agreement", "significance_rows", "runtime", "errors",
           "network_pictures", "summarise"]


def _ok(records, kind="analysis"):
    return [r for r in records if r["kind"] == kind and r["result"]["status"] == "ok"]


def _labels(records) -> list[str]:
    return list(dict.fromkeys(r["label"] for r in records))


def _group(rec, keys) -> str:
    return ", ".join(f"{k}={rec['tags'].get(k, '')}" for k in keys) or "all runs"


def success_by_group(records) -> dict:
    """Mean success per (group of tag values, method label); groups use every tag but ``network``."""
    ok = [r for r in _ok(records) if r["result"].get("success") not in ("", None)]
    keys = sorted({k for r in records for k in r["tags"] if k != "network"})
    acc: dict = {}
    for r in ok:
        cell = acc.setdefault((_group(r, keys), r["label"]), [])
        cell.append(float(r["result"]["success"]))
    cells = [{"group": g, "label": m, "mean": round(statistics.fmean(v), 4), "n": len(v)}
             for (g, m), v in sorted(acc.items())]
    return {"group_by": keys, "cells": cells}


def _series_key(r):
    return (r["label"], r["relpath"], r["options"], r["view"], r["edge_norm"])


def stability(records) -> list[dict]:
    """Per method label: ARI between the partitions of every pair of seeds on the same file."""
    per: dict = {}
    for r in _ok(records):
        per.setdefault(_series_key(r), []).append(r["result"]["labels"])
    out = {}
    for key, parts in per.items():
        vals = [ari(a, b) for a, b in itertools.combinations(parts, 2) if len(a) == len(b)]
        out.setdefault(key[0], []).extend(vals)
    return [{"label": m, "pairs": len(v), "mean_ari": round(statistics.fmean(v), 4) if v else None,
             "min_ari": round(min(v), 4) if v else None} for m, v in out.items()]


def agreement(records) -> list[dict]:
    """Every pair of files tagged as the same network, per (method, seed): same graph? same partition?"""
    per: dict = {}
    for r in _ok(records):
        if r["tags"].get("network"):
            key = (r["tags"]["network"], r["label"], r["options"], r["seed"], r["view"], r["edge_norm"])
            per.setdefault(key, []).append(r)
    pairs = []
    for (net, label, _, seed, _, _), rs in per.items():
        for a, b in itertools.combinations(rs, 2):
            ga, gb = a["result"]["graph_sha"], b["result"]["graph_sha"]
            la, lb = a["result"]["labels_sha"], b["result"]["labels_sha"]
            pairs.append({"network": net, "label": label, "seed": seed, "a": a["path"], "b": b["path"],
                          "a_framework": a["tags"].get("framework", ""), "b_framework": b["tags"].get("framework", ""),
                          "same_graph": ga == gb, "same_partition": ga == gb and la == lb,
                          "ari": round(ari(a["result"]["labels"], b["result"]["labels"]), 4)
                          if len(a["result"]["labels"]) == len(b["result"]["labels"]) else None})
    return pairs


def significance_rows(records) -> list[dict]:
    """One row per significance run: file, method, null, shuffles, statistic, p, z."""
    return [{"path": r["path"], "label": r["label"], "seed": r["seed"],
             **{k: r["result"].get(k) for k in ("null", "shuffles", "statistic", "true_value", "p", "z")}}
            for r in _ok(records, "significance")]


def runtime(records) -> list[dict]:
    """Per method label: runs, median, largest and total seconds (errors included: they cost time too)."""
    out = []
    for m in _labels(records):
        secs = [r["seconds"] for r in records if r["label"] == m]
        out.append({"label": m, "runs": len(secs), "median_s": round(statistics.median(secs), 4),
                    "max_s": round(max(secs), 4), "total_s": round(sum(secs), 3)})
    return out


def errors(records) -> list[dict]:
    """Every failed run with its message."""
    return [{"path": r["path"], "kind": r["kind"], "label": r["label"], "seed": r["seed"],
             "error": r["result"]["error"]} for r in records if r["result"]["status"] == "error"]


def network_pictures(records) -> list[dict]:
    """Per network (its tag, else its file): per method, the first seed's units per module per layer."""
    out: dict = {}
    for r in _ok(records):
        net = r["tags"].get("network") or r["path"]
        methods = out.setdefault(net, {})
        if r["label"] not in methods:
            methods[r["label"]] = {"path": r["path"], "seed": r["seed"], "layers": r["result"]["layer_modules"],
                                   "modules": r["result"].get("modules")}
    return [{"network": n, "methods": m} for n, m in out.items()]


def summarise(records, *, planned: int) -> dict:
    """Everything the report shows, as one JSON-ready dict."""
    ok = sum(r["result"]["status"] == "ok" for r in records)
    return {"planned": planned, "stored": len(records), "ok": ok, "failed": len(records) - ok,
            "success": success_by_group(records), "stability": stability(records),
            "agreement": agreement(records), "significance": significance_rows(records),
            "runtime": runtime(records), "errors": errors(records)}
