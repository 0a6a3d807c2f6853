"""Success of every detector on our own sculpted Boolean networks, every task of spec §1.3 (issue 8).

Sculpts (or, with --no-sculpt, only reads from the cache) every cell of the Neural Sculpting
grid (spec §3: widths 24/36/48 × 1–3 hidden layers; hierarchy sweep 36/48/60 × 1–4; seeds
0, 1, 2, 5), analyses each network with every method, scores it with the spec §6 criteria
and prints, per published table of spec §7.1, each method's success rate beside the
published one. The last lines give each method's mean success over the 98 published cells
(exemplars 12, reuse sweep 15, overlap sweep input separability + output sub-function 50,
hierarchy "all modules" 12, [8,2,1,2,8] 9) and its run time. Hidden-unit separability is a
property of the network, not of the partition: it is reported but kept out of the mean.
Rows go to --out as CSV and JSON; --write replaces the ``recovery`` section of docs/results.md.

The same study as a ``modgraph study`` spec (issue 17): ``benchmarks/recovery_study.toml`` (written
by ``--write-spec``; one ``[[inputs]]`` per task and depth, tagged ``task``/``depth``, rooted at the
cache) runs on the study engine, and ``--from-study DIR`` prints these tables from its stored runs
(``DIR/runs.jsonl``) instead of analysing; tests/trainers/test_recovery_study.py checks on a slice
that both give the same cells. The full run (the cache out/study is ~2 CPU-hours to sculpt)::

    .venv/bin/python benchmarks/recovery.py --sculpt-only --workers 2      # fill out/study
    .venv/bin/modgraph study benchmarks/recovery_study.toml --out out/recovery-study --workers 2
    .venv/bin/python benchmarks/recovery.py --from-study out/recovery-study

Usage: .venv/bin/python benchmarks/recovery.py [--tasks exemplars,reuse,overlap,hierarchy]
       [--methods sculpting,...] [--seeds 0,1,2,5] [--no-sculpt] [--workers 2] [--write]
       [--sculpt-only] [--write-spec PATH] [--from-study DIR] [--before CSV]

``--before benchmarks/recovery_before_issue15.csv`` shows each rate beside the same cell of the grid
before issue 15 (read back from that version's docs/results.md by ``--extract-before``).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from modgraph.detect import DETECTORS
from modgraph.io import atomic_path
from modgraph.study import analyze_many
from results import replace_section          # benchmarks/results.py (run as a script: benchmarks/ is on sys.path)
from trainers.study import cell_dir, sculpt_cells

ROOT = Path(__file__).resolve().parents[1]
US = (1, 2, 4, 6, 8)
EXEMPLARS = {"input-separable": "[4,2,4]", "reused": "[4,1,2,16]", "both": "[6,3,3,3]", "none": "[4,1,4]"}
FAMILIES = {"exemplars": list(EXEMPLARS),
            "reuse": [f"reuse-u{u}" for u in US[:-1]] + ["reused"],          # u = 8 is the "reused" exemplar
            "overlap": [f"overlap-o{o}-u{u}" for o in range(5) for u in US],
            "hierarchy": [f"hierarchy-u{u}" for u in US]}
#: Methods left out by default: spectral needs a fixed number of modules.
NOT_BY_DEFAULT = {"spectral"}


@dataclass(frozen=True)
class Cell:
    """One cell of a published table: the runs of ``task`` at ``depths``, scored by ``criterion``."""

    table: str
    row: str
    col: str
    task: str
    depths: tuple
    criterion: str                  # a column of the analysis rows ("success" = the task's own criteria)
    published: float | None         # spec §7.1; None where the grid has runs but nothing is published
    tolerance: bool = False         # one of the overlap cells spec §7.1 gives a ±0.15 tolerance
    in_mean: bool = True


def _reuse_task(u: int) -> str:
    return "reused" if u == 8 else f"reuse-u{u}"


def published_cells() -> list[Cell]:
    """Every cell of the spec §7.1 Boolean tables (plus the unpublished hierarchy-grid cells)."""
    cells = []
    for task, rates in {"input-separable": (1, 1, 1), "reused": (0, 1, .92), "both": (1, 1, 1),
                        "none": (1, 1, 1)}.items():
        cells += [Cell("exemplars", EXEMPLARS[task], f"{hl} HL", task, (hl,), "success", r)
                  for hl, r in zip((1, 2, 3), rates)]
    reuse = {1: (0, 0, 0, 0, 0), 2: (.58, .92, 1, 1, 1), 3: (.67, .75, .83, .83, .92)}
    cells += [Cell("reuse", f"{hl} HL", f"u={u}", _reuse_task(u), (hl,), "reuse", r)
              for hl, rates in reuse.items() for u, r in zip(US, rates)]
    overlap = {"input_separability": [(1,) * 5, (.97, 1, 1, 1, 1), (.92, 1, 1, 1, 1), (.64, .72, .78, .89, .86),
                                      (.94, .94, 1, 1, .89)],
               "output_subfunction": [(1,) * 5, (1,) * 5, (.97, 1, 1, 1, 1), (.58, .58, .69, .67, .72),
                                      (.25, .31, .44, .53, .61)],
               "hidden_separability": [(1,) * 5, (1,) * 5, (1,) * 5, (0, 0, .03, .06, .06), (0, 0, .06, .17, .17)]}
    tolerant = {("input_separability", 3, u) for u in US} | {("output_subfunction", 2, 1),
                                                             ("output_subfunction", 3, 6),
                                                             ("hidden_separability", 2, 1)}
    cells += [Cell(f"overlap {crit}", f"o={o}", f"u={u}", f"overlap-o{o}-u{u}", (1, 2, 3), crit, r,
                   (crit, o, u) in tolerant, crit != "hidden_separability")
              for crit, table in overlap.items() for o, rates in enumerate(table) for u, r in zip(US, rates)]
    hier = {2: (1, 1, 1, .83), 3: (.5, .83, 1, 1), 4: (.75, .92, 1, 1)}
    cells += [Cell("hierarchy all_modules", f"{hl} HL", f"u={u}", f"hierarchy-u{u}", (hl,), "all_modules",
                   hier[hl][US.index(u) - 1] if hl in hier and u > 1 else None)
              for hl in (1, 2, 3, 4) for u in US]
    h8 = {2: (1, 1, 0), 3: (1, .92, .92), 4: (1, 1, .92)}
    cells += [Cell("[8,2,1,2,8]", f"{hl} HL", crit, "hierarchy-u4", (hl,), crit, h8[hl][i] if hl in h8 else None)
              for hl in (1, 2, 3, 4)
              for i, crit in enumerate(("input_separability", "single_intermediate", "output_subfunction"))]
    return [c if c.published is not None else Cell(**{**asdict(c), "in_mean": False}) for c in cells]


def grid_cells(tasks, seeds, *, widths=(24, 36, 48), depths=(1, 2, 3), hierarchy_widths=(36, 48, 60),
               hierarchy_depths=(1, 2, 3, 4)) -> list[tuple]:
    """The (task name, hidden widths, seed) cells of spec §3 for ``tasks``."""
    out = []
    for name in tasks:
        hier = name.startswith("hierarchy")
        out += [(name, (w,) * d, s) for d in (hierarchy_depths if hier else depths)
                for w in (hierarchy_widths if hier else widths) for s in seeds]
    return out


def cell_rates(rows, cells, methods) -> list[dict]:
    """One record per (cell, method): success rate over the matching runs (an error counts as a miss)."""
    out = []
    for c in cells:
        for m in methods:
            hits = [r for r in rows if r["method"] == m and r["task"] == c.task and r["depth"] in c.depths]
            vals = [0 if "error" in r else int(r.get(c.criterion) or 0) for r in hits]
            out.append({**asdict(c), "depths": ",".join(map(str, c.depths)), "method": m, "n": len(vals),
                        "errors": sum("error" in r for r in hits),
                        "rate": sum(vals) / len(vals) if vals else None})
    return out


def method_summary(rates, rows, methods) -> dict:
    """Per method: mean success over the published cells that have runs, and run time per analysis."""
    out = {}
    for m in methods:
        mine = [r for r in rates if r["method"] == m and r["in_mean"] and r["n"]]
        secs = [r["seconds"] for r in rows if r["method"] == m]
        out[m] = {"cells": len(mine), "mean": statistics.fmean(r["rate"] for r in mine) if mine else None,
                  "published_mean": statistics.fmean(r["published"] for r in mine) if mine else None,
                  "analyses": len(secs), "median_s": statistics.median(secs) if secs else None,
                  "max_s": max(secs) if secs else None,
                  "errors": sum(1 for r in rows if r["method"] == m and "error" in r),
                  "total_s": sum(secs)}
    return out


def _seed_glob(seeds) -> str:
    """``s0`` for one seed, ``s[0125]`` for several one-digit seeds (exactly those, no others)."""
    seeds = sorted(set(seeds))
    if len(seeds) == 1:
        return f"s{seeds[0]}"
    if all(0 <= s <= 9 for s in seeds):
        return "s[" + "".join(map(str, seeds)) + "]"
    raise ValueError(f"seeds {seeds}: a spec glob covers one-digit seeds only; list the cells one by one")


def study_doc(cells, methods, *, seed: int = 1, root: str = ".", name: str = "recovery") -> dict:
    """The recovery study as a ``modgraph study`` spec document (``parse_spec`` input).

    One ``[[inputs]]`` per (task, depth), tagged ``task`` and ``depth`` (what :func:`cell_rates`
    groups by), with one glob per hidden widths matching exactly the cells' seeds
    (``<task>/<hidden>-s[0125]/network.h5``, the cache layout of ``trainers.study.cell_dir``);
    every method with the one detector ``seed``, scored by the ground truth in each file.
    """
    groups: dict = {}
    for task, hidden, s in cells:
        groups.setdefault((task, len(hidden)), {}).setdefault(tuple(hidden), []).append(s)
    inputs = [{"paths": [f"{task}/{'x'.join(map(str, h))}-{_seed_glob(ss)}/network.h5" for h, ss in by.items()],
               "tags": {"task": task, "depth": depth}} for (task, depth), by in groups.items()]
    return {"study": {"name": name, "root": root, "seeds": [seed]}, "inputs": inputs,
            "methods": [{"name": m} for m in methods]}


def _toml_value(v) -> str:
    if isinstance(v, str):
        return json.dumps(v)                     # a TOML basic string is a JSON string for these names
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(map(_toml_value, v)) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {type(v).__name__}")


def spec_toml(doc: dict, header: str = "") -> str:
    """A :func:`study_doc` document as TOML text (``tomllib.loads`` gives ``doc`` back)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["[study]", *(f"{k} = {_toml_value(v)}" for k, v in doc["study"].items())]
    for entry in doc["inputs"]:
        lines += ["", "[[inputs]]", *(f"{k} = {_toml_value(v)}" for k, v in entry.items())]
    for m in doc["methods"]:
        lines += ["", "[[methods]]", *(f"{k} = {_toml_value(v)}" for k, v in m.items())]
    return "\n".join(lines) + "\n"


_CELL = re.compile(r"(\d+(?:x\d+)*)-s(\d+)$")


def rows_from_study(study_rows) -> list[dict]:
    """The rows :func:`cell_rates` and :func:`method_summary` take, from a study's ``runs.jsonl``
    rows: ``method`` is the run's label, ``seed`` the training seed (from the cell folder, as in
    :func:`analyze_many` rows), ``width`` from it too, ``error`` only on a failed run."""
    rows = []
    for r in study_rows:
        if r["kind"] != "analysis":
            continue
        m = _CELL.search(Path(r["relpath"]).parent.name)
        row = {k: v for k, v in r.items() if k not in ("error", "status")}
        row.update(method=r["label"], seed=int(m.group(2)) if m else None,
                   width=int(m.group(1).split("x")[0]) if m else None)
        if r["status"] != "ok":
            row["error"] = r["error"]
        rows.append(row)
    return rows


def runs_from_study(study_rows) -> list[tuple]:
    """``(path, info)`` per network of a study (what :func:`markdown` describes), from the files' metadata."""
    from modgraph.io import load

    out, seen = [], set()
    for r in rows_from_study(study_rows):
        if r["path"] in seen:
            continue
        seen.add(r["path"])
        try:
            meta = load(r["path"]).metadata
        except Exception:                            # an unreadable file: its runs are error rows already
            meta = {}
        sel = meta.get("selected", {})
        out.append((Path(r["path"]), {"task": r["task"], "depth": r["depth"], "width": r["width"], "seed": r["seed"],
                                      "accuracy": meta.get("accuracy"), "edges": sel.get("edges")}))
    return out


def _fmt(v, flag="") -> str:
    return "–" if v is None else f"{v:.2f}{flag}"


def _table(name, axis, rates, methods, before=None) -> list[str]:
    mine = [r for r in rates if r["table"] == name]
    rows, cols = list(dict.fromkeys(r["row"] for r in mine)), list(dict.fromkeys(r["col"] for r in mine))
    at = {(r["row"], r["col"], r["method"]): r for r in mine}
    show = [m for m in methods if any(at.get((rw, cl, m), {}).get("n") for rw in rows for cl in cols)]
    graph_only = name == "overlap hidden_separability"      # the same for every method: show it once
    lines = [f"| {axis} | | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for rw in rows:
        if not any(at[(rw, cl, m)]["n"] for cl in cols for m in methods):
            continue
        pub = [_fmt(at[(rw, cl, methods[0])]["published"], "†" if at[(rw, cl, methods[0])]["tolerance"] else "")
               for cl in cols]
        lines.append(f"| {rw} | published | " + " | ".join(pub) + " |")
        for m in show[:1] if graph_only else show:
            cells = []
            for cl in cols:
                r = at[(rw, cl, m)]
                low = r["rate"] is not None and r["published"] is not None and r["rate"] < r["published"] - 0.15
                text = _fmt(r["rate"], " ✗" if low else "")
                if before is not None:
                    text += f" ({_fmt(before.get((name, rw, cl, 'networks' if graph_only else m)))})"
                cells.append(text)
            lines.append(f"| | {'networks' if graph_only else m} | " + " | ".join(cells) + " |")
    ns = [r["n"] for r in mine if r["n"]]
    span = f"{min(ns)}" if ns and min(ns) == max(ns) else f"{min(ns, default=0)}–{max(ns, default=0)}"
    lines.append(f"\nRuns per cell: {span}.")
    return lines


#: table -> (heading, name of its rows)
TITLES = {"exemplars": ("Exemplars (spec §6 mapping: [4,2,4] input separability, [4,1,2,16] reuse, "
                        "[6,3,3,3] input separability + output sub-function, [4,1,4] one module)", "task"),
          "reuse": ("Reuse sweep [4,1,2,2u]: reuse success", "HL"),
          "overlap input_separability": ("Overlap sweep: input separability (each cell pools 3 depths × 3 widths "
                                         "× 4 seeds)", "overlap"),
          "overlap output_subfunction": ("Overlap sweep: output sub-function", "overlap"),
          "overlap hidden_separability": ("Overlap sweep: hidden-unit separability (a property of the network, "
                                          "the same for every method; not in the mean)", "overlap"),
          "hierarchy all_modules": ("Hierarchy sweep [8,2,1,2,2u]: all modules for the depth", "HL"),
          "[8,2,1,2,8]": ("[8,2,1,2,8] (hierarchy-u4): each criterion by depth", "HL")}


def cells_from_markdown(text: str) -> list[dict]:
    """The per-method cell rates of a ``recovery`` section this script wrote (:func:`markdown`), read back.

    One ``{table, row, col, method, rate}`` per method row and column (``rate`` None for "–"),
    flags (✗, †) and an earlier ``(before)`` value dropped; what ``--before`` compares with.
    """
    heading = {f"### {title}": name for name, (title, _) in TITLES.items()}
    out, table, cols, row = [], None, [], None
    for line in text.splitlines():
        if line.startswith("### "):
            table, cols, row = heading.get(line.strip()), [], None
            continue
        if table is None or not line.startswith("|") or line.startswith("|---"):
            continue
        parts = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cols:
            cols = parts[2:]
            continue
        if parts[0]:
            row = parts[0]
        if parts[1] == "published":
            continue
        method = "networks" if parts[1] == "networks" else parts[1]
        for col, cell in zip(cols, parts[2:]):
            value = cell.split()[0] if cell else "–"
            out.append({"table": table, "row": row, "col": col, "method": method,
                        "rate": None if value == "–" else float(value)})
    return out


def read_before(path: Path) -> dict:
    """``(table, row, col, method) -> rate`` from a ``cells.csv`` of an earlier run (or the CSV
    :func:`cells_from_markdown` rows were saved as)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise SystemExit(f"--before: cannot read {path}: {err.strerror}") from None
    need = {"table", "row", "col", "method", "rate"}
    if rows and not need <= set(rows[0]):
        raise SystemExit(f"--before {path}: expected the columns {sorted(need)}, found {sorted(rows[0])}")
    return {(r["table"], r["row"], r["col"], r["method"]): (float(r["rate"]) if r["rate"] not in ("", "None") else None)
            for r in rows}


def _single_step(path: Path) -> bool:
    """Whether the cached run was sculpted with one (Pu, Pe) step instead of the spec §4.4 grid."""
    config = path.parent / "config.json"
    return config.exists() and json.loads(config.read_text()).get("grid") is False


def markdown(rates, summary, runs, methods, seconds, *, study: str | None = None, before: dict | None = None,
             before_label: str = "") -> str:
    edges = [i["edges"] for _, i in runs if i.get("edges") is not None]
    single = sum(_single_step(Path(p)) for p, _ in runs)
    grid = "full (Pu, Pe) grid" if not single else f"{single} of them with a single (Pu, Pe) step, not the grid"
    n_mean = sum(1 for c in published_cells() if c.in_mean)
    short = sum(1 for _, i in runs if i.get("accuracy") is not None and i["accuracy"] < 1)
    out = ["## Detectors on our sculpted Boolean networks, every task of spec §1.3 (issue 8)", "",
           f"Written by `benchmarks/recovery.py`: {len(runs)} sculpted networks of "
           f"{len({i['task'] for _, i in runs})} tasks (spec §3 grid, seeds {sorted({i['seed'] for _, i in runs})}, "
           f"{grid}; median {statistics.median(edges) if edges else '–'} surviving edges; "
           f"{short} below 100 % accuracy), each analysed with every method (detector seed 1) and scored by the "
           f"spec §6 criteria. In each table the `published` row (spec §7.1) is followed by one row per method. "
           f"† a published overlap cell that spec §7.1 gives a ±0.15 tolerance (reported as is; the mean is "
           f"plain); ✗ a rate below the published one minus 0.15. An analysis that raised counts as a miss. "
           + (f"Analysed by `modgraph study` ({study})." if study else
              f"Wall time {seconds / 60:.1f} min on 2 shared cores.")
           + (f" Each method's rate is followed by the same cell before, in parentheses ({before_label})."
              if before is not None else "")]
    for name, (title, axis) in TITLES.items():
        if any(r["table"] == name and r["n"] for r in rates):
            out += ["", f"### {title}", "", *_table(name, axis, rates, methods, before)]
    mean_before = before_means(before, rates, methods) if before is not None else {}
    out += ["", "### Mean success over the published cells", "",
            "| method | published cells with runs | mean success | " + ("before | " if before is not None else "")
            + "published mean, same cells | median s / analysis | max s / analysis | errors | total analysis s |",
            "|---|---|---|---|---|---|---|---|" + ("---|" if before is not None else "")]
    for m in methods:
        s = summary[m]
        median = "–" if s["median_s"] is None else f"{s['median_s']:.3f}"
        top = "–" if s.get("max_s") is None else f"{s['max_s']:.2f}"
        was = f"{_fmt(mean_before.get(m))} | " if before is not None else ""
        out.append(f"| {m} | {s['cells']} / {n_mean} | {_fmt(s['mean'])} | {was}{_fmt(s['published_mean'])} | "
                   f"{median} | {top} | {s.get('errors', 0)} | {s['total_s']:.0f} |")
    return "\n".join(out)


def before_means(before: dict, rates, methods) -> dict:
    """Per method, the mean of the earlier rates over the published cells (in the mean) that have runs
    now: the same cells as the mean beside it."""
    out = {}
    for m in methods:
        vals = [before.get((r["table"], r["row"], r["col"], m)) for r in rates
                if r["method"] == m and r["in_mean"] and r["n"]]
        vals = [v for v in vals if v is not None]
        out[m] = statistics.fmean(vals) if vals else None
    return out


def _write_csv(path: Path, rows) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, restval="")
    w.writeheader()
    w.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def write_outputs(out: Path, rows, rates, summary, config) -> list[Path]:
    """``rows.csv`` (one per network × method), ``cells.csv`` (one per table cell × method), ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "rows.csv", rows)
    _write_csv(out / "cells.csv", rates)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps({"config": config, "methods": summary, "cells": rates}, indent=1))
    return [out / "rows.csv", out / "cells.csv", out / "summary.json"]


def _ints(text) -> tuple:
    return tuple(int(v) for v in text.split(",") if v)


def _tasks(text) -> list[str]:
    names = []
    for token in text.split(","):
        names += FAMILIES.get(token, [token] if token else [])
    known = {n for f in FAMILIES.values() for n in f}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown tasks {unknown}; give task names or families: {', '.join(FAMILIES)}")
    return list(dict.fromkeys(names))


def default_methods() -> list[str]:
    """Every registered detector except those needing a fixed k, ``sculpting`` first."""
    names = [m for m in DETECTORS if m not in NOT_BY_DEFAULT]
    return sorted(names, key=lambda m: m != "sculpting")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(FAMILIES), help="task names and/or families " + ",".join(FAMILIES))
    p.add_argument("--methods", default=None, help="default: every registered method but " + ",".join(NOT_BY_DEFAULT))
    p.add_argument("--seeds", default="0,1,2,5")
    p.add_argument("--widths", default="24,36,48")
    p.add_argument("--depths", default="1,2,3")
    p.add_argument("--hierarchy-widths", default="36,48,60")
    p.add_argument("--hierarchy-depths", default="1,2,3,4")
    p.add_argument("--cache", default=str(ROOT / "out" / "study"))
    p.add_argument("--no-sculpt", action="store_true", help="analyse only the cells already in the cache")
    p.add_argument("--workers", type=int, default=1, help="processes for sculpting the missing cells and for "
                   "the analyses")
    p.add_argument("--seed", type=int, default=1, help="detector seed")
    p.add_argument("--out", default=str(ROOT / "out" / "benchmarks" / "recovery"))
    p.add_argument("--write", action="store_true", help="replace the 'recovery' section of --doc")
    p.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--before", metavar="CSV", help="an earlier run's cells.csv: each rate is shown with the "
                   "earlier one in parentheses (benchmarks/recovery_before_issue15.csv: the table before issue 15)")
    p.add_argument("--before-label", default="the grid of 2026-11 before issue 15: lr 0.05 / batch 32 / 15 epochs "
                   "for every task without its own settings, the ε-guarded BCE, the old detector tie-breaks",
                   help="what --before is, for the text")
    p.add_argument("--extract-before", nargs=2, metavar=("DOC", "CSV"), help="write the rates of DOC's recovery "
                   "section as a --before CSV, and stop")
    p.add_argument("--sculpt-only", action="store_true", help="fill the cache, analyse nothing")
    p.add_argument("--write-spec", metavar="PATH", help="write the study spec (TOML) for these cells and "
                   "methods, rooted at --cache, and stop (with --no-sculpt: the cells in the cache only)")
    p.add_argument("--from-study", metavar="DIR", help="the tables from a modgraph study folder "
                   "(DIR/runs.jsonl) instead of sculpting and analysing")
    args = p.parse_args(argv)
    methods = args.methods.split(",") if args.methods else default_methods()
    unknown = [m for m in methods if m not in DETECTORS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; choose from {', '.join(DETECTORS)}")
    if args.extract_before:
        return _extract_before(Path(args.extract_before[0]), Path(args.extract_before[1]))
    before = read_before(Path(args.before)) if args.before else None
    t0 = time.perf_counter()
    cells = grid_cells(_tasks(args.tasks), _ints(args.seeds), widths=_ints(args.widths), depths=_ints(args.depths),
                       hierarchy_widths=_ints(args.hierarchy_widths), hierarchy_depths=_ints(args.hierarchy_depths))
    if args.no_sculpt:
        cells = [c for c in cells if (cell_dir(args.cache, *c) / "network.h5").exists()]
    if args.write_spec:
        return _write_spec(Path(args.write_spec), cells, methods, args)
    if args.from_study:
        study_rows = _read_jsonl(Path(args.from_study) / "runs.jsonl")
        rows, runs = rows_from_study(study_rows), runs_from_study(study_rows)
        methods = [m for m in methods if any(r["method"] == m for r in rows)]
    else:
        runs = sculpt_cells(cells, args.cache, progress=not args.quiet, workers=args.workers)   # cached: read only
        if args.sculpt_only:
            print(f"{len(runs)} networks in {args.cache}")
            return 0
        rows = analyze_many(runs, methods=methods, seed=args.seed, workers=args.workers, progress=not args.quiet)
    rates = cell_rates(rows, published_cells(), methods)
    summary = method_summary(rates, rows, methods)
    text = markdown(rates, summary, runs, methods, time.perf_counter() - t0, study=args.from_study, before=before,
                    before_label=args.before_label)
    print(text)
    for r in rows:
        if "error" in r:
            print(f"error: {r['task']} {r['depth']}x{r['width']} s{r['seed']} {r['method']}: {r['error']}")
    config = {**vars(args), "methods": methods, "networks": len(runs)}
    for path in write_outputs(Path(args.out), rows, rates, summary, config):
        print(f"wrote {path}")
    if args.write:
        replace_section(Path(args.doc), "recovery", text)
    return 0


def spec_text(cells, methods, *, seed: int, root: str) -> str:
    """The TOML ``--write-spec`` writes: :func:`study_doc` with a header saying how to run it."""
    header = (f"The recovery study of benchmarks/recovery.py ({len(cells)} networks x {len(methods)} methods, "
              f"detector seed {seed}),\nwritten by `benchmarks/recovery.py --write-spec PATH` (regenerate it "
              "there; a test checks it is current).\nRun: modgraph study benchmarks/recovery_study.toml "
              "--out out/recovery-study --workers 2\nthen: benchmarks/recovery.py --from-study out/recovery-study")
    return spec_toml(study_doc(cells, methods, seed=seed, root=root), header)


def _extract_before(doc: Path, path: Path) -> int:
    text = doc.read_text()
    m = re.search(r"<!-- BEGIN recovery -->(.*?)<!-- END recovery -->", text, re.S)
    if not m:
        raise SystemExit(f"--extract-before: {doc} has no recovery section (<!-- BEGIN recovery --> ... END)")
    rows = cells_from_markdown(m.group(1))
    _write_csv(path, rows)
    print(f"wrote {path}: {len(rows)} method cells")
    return 0


def _read_jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except OSError as err:
        raise SystemExit(f"--from-study: cannot read {path}: {err.strerror}") from None


def _write_spec(path: Path, cells, methods, args) -> int:
    root = Path(args.cache).resolve()
    try:
        rel = os.path.relpath(root, path.resolve().parent)
    except ValueError:
        rel = str(root)
    with atomic_path(path) as tmp:
        tmp.write_text(spec_text(cells, methods, seed=args.seed, root=rel))
    print(f"wrote {path}: {len(cells)} networks, {len(methods)} methods, root {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
