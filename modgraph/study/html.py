"""``report.html``: one self-contained page (no external URL), inline SVG (HTML5, no namespace URL),
raw numbers as JSON.

The numbers come from :func:`modgraph.study.summary.summarise`; the page has the sections
overview, success, stability, agreement, significance, runtime, errors, networks and runs,
each an ``<section id=...>`` with a ``<table>``; the data sit in
``<script type="application/json" id="modgraph-study-data">``.

Examples
--------
>>> page = render_report([], planned=0, name="empty")
>>> page.startswith("<!DOCTYPE html>") and 'id="success"' in page and "http" not in page
True
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from modgraph.io import atomic_path
from modgraph.study.picture import COLOURS as _COLOURS
from modgraph.study.picture import MAX_ROWS, MAX_SEGMENTS, network_svgs
from modgraph.study.store import table_rows
from modgraph.study.summary import network_pictures, summarise

__all__ = ["render_report", "write_report", "SECTIONS", "MAX_NETWORKS", "MAX_TABLE_ROWS", "MAX_CELL_CHARS"]

SECTIONS = ("overview", "success", "stability", "agreement", "significance", "runtime", "errors", "networks",
            "runs")
#: At most this many networks are drawn (a 1,428-network study would otherwise weigh megabytes).
MAX_NETWORKS = 30
#: At most this many rows per table (flagged rows first); every row is in the embedded JSON.
MAX_TABLE_ROWS = 500
#: Longer cells (an error listing every unsupported node, say) are cut here; the full text is in the JSON.
MAX_CELL_CHARS = 400
_STYLE = ("body{font:14px/1.4 sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}"
          "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;font-size:13px}th{background:#eee}"
          ".bad{background:#fdd}.num{text-align:right}details{margin:.5em 0}")


def _e(v) -> str:
    return html.escape("" if v is None else str(v))


def _cell(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f'<td class="num">{_e(v)}</td>'
    text = "" if v is None else str(v)
    if len(text) > MAX_CELL_CHARS:
        text = f"{text[:MAX_CELL_CHARS]} … ({len(text)} characters; all in the embedded JSON)"
    return f"<td>{_e(text)}</td>"


def _table(rows, cols=None, *, flag=None) -> str:
    """A table of at most :data:`MAX_TABLE_ROWS` rows, the flagged ones first."""
    if not rows:
        return "<p>none</p>"
    cols = cols or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    shown = sorted(rows, key=lambda r: not flag(r))[:MAX_TABLE_ROWS] if flag else rows[:MAX_TABLE_ROWS]
    body = []
    for r in shown:
        cls = ' class="bad"' if flag and flag(r) else ""
        body.append(f"<tr{cls}>{''.join(_cell(r.get(c)) for c in cols)}</tr>")
    more = (f"<p>{len(shown)} of {len(rows)} rows shown{', flagged first' if flag else ''}; every row is in "
            "the embedded JSON (the runs also in runs.csv).</p>" if len(rows) > len(shown) else "")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _success(s) -> str:
    cells = s["success"]["cells"]
    labels = list(dict.fromkeys(c["label"] for c in cells))
    groups = list(dict.fromkeys(c["group"] for c in cells))
    at = {(c["group"], c["label"]): c for c in cells}
    rows = [{"group": g, **{m: f"{at[(g, m)]['mean']:.2f} (n={at[(g, m)]['n']})" if (g, m) in at else "–"
                            for m in labels}} for g in groups]
    return (f"<p>Mean success per method and group ({_e(', '.join(s['success']['group_by']) or 'no tags')}); "
            "runs without a ground truth are left out.</p>" + _table(rows, ["group", *labels]))


def _bars_svg(values: dict, unit: str) -> str:
    """A horizontal bar chart: one bar per key."""
    top = max(values.values(), default=0) or 1
    rows = []
    for i, (k, v) in enumerate(values.items()):
        w = 400 * v / top
        rows.append(f'<text x="0" y="{20 * i + 14}">{_e(k)}</text><rect x="160" y="{20 * i + 3}" width="{w:.1f}" '
                    f'height="14" fill="{_COLOURS[i % len(_COLOURS)]}"/>'
                    f'<text x="{165 + w:.1f}" y="{20 * i + 14}">{v:.3g} {unit}</text>')
    return f'<svg width="700" height="{20 * len(values) + 6}" font-size="12">{"".join(rows)}</svg>'


def _networks(records) -> str:
    pics = network_pictures(records)
    out = [f"<h3>{_e(pic['network'])}</h3>" + "".join(network_svgs(pic["methods"])) for pic in pics[:MAX_NETWORKS]]
    more = (f"<p>… and {len(pics) - MAX_NETWORKS} more networks, not drawn (their units per module per layer "
            "are in each run's result.json).</p>" if len(pics) > MAX_NETWORKS else "")
    return ("<p>Per network and method (first seed): one row per layer (input at the top; consecutive layers "
            f"share a row past {MAX_ROWS}), each bar the layer's units split by module (one colour per module, "
            f"at most {MAX_SEGMENTS} per bar, the rest light grey; dark grey = removed), whatever the size.</p>"
            + "".join(out) + more)


def _sections(s, records) -> dict:
    agree = s["agreement"]
    differ = [p for p in agree if not p["same_partition"]]
    return {
        "overview": f"<p>{s['stored']} of {s['planned']} runs stored: {s['ok']} ok, {s['failed']} failed.</p>",
        "success": _success(s),
        "stability": "<p>Pairwise ARI between the partitions of different seeds on the same file.</p>"
                     + _table(s["stability"]),
        "agreement": (f"<p>Files tagged as the same network, per method and seed: {len(agree)} pairs, "
                      f"<b>{len(differ)} differing</b> (flagged).</p>"
                      + _table(agree, flag=lambda p: not p["same_partition"])),
        "significance": _table(s["significance"]),
        "runtime": _table(s["runtime"]) + _bars_svg({r["label"]: r["median_s"] for r in s["runtime"]}, "s"),
        "errors": _table(s["errors"]),
        "networks": _networks(records),
        "runs": f"<details><summary>all {len(records)} runs</summary>{_table(table_rows(records))}</details>",
    }


def render_report(records, *, planned: int, name: str = "study") -> str:
    """The page for these stored records."""
    s = summarise(records, planned=planned)
    data = json.dumps({"summary": s, "runs": table_rows(records, timings=True)}).replace("</", "<\\/")
    body = "".join(f'<section id="{k}"><h2>{k.capitalize()}</h2>{v}</section>'
                   for k, v in _sections(s, records).items())
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>modgraph study {_e(name)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>modgraph study: {_e(name)}</h1>{body}"
            f'<script type="application/json" id="modgraph-study-data">{data}</script></body></html>')


def write_report(out, records, *, planned: int, name: str = "study") -> Path:
    """Write ``report.html`` under ``out``, atomically."""
    path = Path(out) / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(records, planned=planned, name=name), encoding="utf-8")
    return path
