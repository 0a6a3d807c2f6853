"""The aggregated picture of one network in ``report.html``, bounded whatever the network's size.

One row per layer of the condensed unit graph (input at the top), one column per method, each
bar the layer's units split by module (one colour per module, in module order; grey = removed
units; hovering a bar shows its numbers). The pieces of all bars are drawn as one ``<path>`` per
colour, so a piece costs a few bytes, not an element. Past :data:`MAX_ROWS` layers (a ResNet-50's split view has 67) consecutive layers share
a row (``layers 60–63``); past :data:`MAX_SEGMENTS` modules in a row the smallest are drawn as one
light "other" segment; at most :data:`METHODS_PER_SVG` methods share one SVG (more methods: more
SVGs below each other). So a picture holds at most ``MAX_ROWS × (MAX_SEGMENTS + 2)`` pieces and
``MAX_ROWS`` bars per method, at most ``len(COLOURS) + 2`` paths per SVG, and is at most
:data:`MAX_WIDTH` pixels wide, for a 40-unit MLP as for a ResNet.

Examples
--------
>>> rows = bin_layers([{"0": 3}, {"0": 2, "1": 2}, {"1": 4}], max_rows=2)
>>> [(a, b, c) for a, b, c in rows]
[(0, 2, {'0': 5, '1': 2}), (2, 3, {'1': 4})]
>>> bar_segments({"0": 5, "1": 2, "2": 1, "-1": 3}, max_segments=2)
[(0, 5, 'module 0'), (1, 2, 'module 1'), ('other', 1, '1 more module'), ('removed', 3, 'removed')]
>>> svg = network_svgs({"modularity": {"modules": 2, "layers": [{"0": 3}, {"0": 1, "1": 2}]}})[0]
>>> svg.count("<path"), svg.count("<rect"), "layer 1: 3 units" in svg, "<title>modules 0: 1; 1: 2 units" in svg
(2, 2, True, True)
"""
from __future__ import annotations

import html
import math

__all__ = ["network_svgs", "bin_layers", "bar_segments", "COLOURS", "MAX_ROWS", "MAX_SEGMENTS",
           "METHODS_PER_SVG", "MAX_WIDTH"]

COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#1f77b4", "#2ca02c")
#: At most this many rows (layers, or bins of consecutive layers) per picture.
MAX_ROWS = 80
#: At most this many modules drawn one by one per bar; the rest are one "other" segment.
MAX_SEGMENTS = 12
#: At most this many methods (columns) per SVG.
METHODS_PER_SVG = 4
_LABEL_W, _BAR_W, _GAP, _ROW_H, _HEAD_H = 200, 210, 12, 16, 22
#: Width of the widest SVG, in pixels (fits the page's 1200 px).
MAX_WIDTH = _LABEL_W + METHODS_PER_SVG * (_BAR_W + _GAP)
_OTHER, _REMOVED = "#e4e4e4", "#999"


def _e(v) -> str:
    return html.escape(str(v))


def bin_layers(layers: list[dict], *, max_rows: int = MAX_ROWS) -> list[tuple[int, int, dict]]:
    """``(first, stop, {module: units})`` per row: consecutive layers summed into at most ``max_rows`` rows."""
    size = max(1, math.ceil(len(layers) / max_rows))
    rows = []
    for start in range(0, len(layers), size):
        counts: dict = {}
        for layer in layers[start:start + size]:
            for mod, c in layer.items():
                counts[mod] = counts.get(mod, 0) + c
        rows.append((start, min(start + size, len(layers)), counts))
    return rows


def bar_segments(counts: dict, *, max_segments: int = MAX_SEGMENTS) -> list[tuple]:
    """The pieces of one bar, ``(module or 'other' or 'removed', units, title)``: the ``max_segments``
    largest modules in module order, then the rest summed, then the removed units (module < 0)."""
    live = sorted((int(m), c) for m, c in counts.items() if int(m) >= 0)
    keep = {m for m, _ in sorted(live, key=lambda mc: (-mc[1], mc[0]))[:max_segments]}
    segs = [(m, c, f"module {m}") for m, c in live if m in keep]
    rest = [c for m, c in live if m not in keep]
    if rest:
        segs.append(("other", sum(rest), f"{len(rest)} more module{'s' if len(rest) > 1 else ''}"))
    removed = sum(c for m, c in counts.items() if int(m) < 0)
    if removed:
        segs.append(("removed", removed, "removed"))
    return segs


def _colour(mod) -> str:
    return _OTHER if mod == "other" else _REMOVED if mod == "removed" else COLOURS[mod % len(COLOURS)]


def _row_label(first: int, stop: int, units: int) -> str:
    where = f"layer {first}" if stop - first == 1 else f"layers {first}–{stop - 1}"
    return f"{where}: {units} units"


def _bar(counts: dict, x: float, y: float, paths: dict) -> str:
    """One bar: its pieces go into ``paths`` (one path per colour, so the size grows by a few bytes
    per piece); returned is the invisible rectangle over the bar that holds its title."""
    segs = bar_segments(counts)
    if not segs:
        return ""
    total, x0 = sum(c for _, c, _ in segs), x
    for mod, c, _ in segs:
        w = _BAR_W * c / total
        paths.setdefault(_colour(mod), []).append(f"M{x:.1f} {y}h{w:.1f}v{_ROW_H - 3}h-{w:.1f}z")
        x += w
    title = "; ".join(f"{t.removeprefix('module ')}: {c}" for _, c, t in segs)
    return (f'<rect x="{x0}" y="{y}" width="{_BAR_W}" height="{_ROW_H - 3}" fill="#fff" fill-opacity="0">'
            f"<title>modules {_e(title)} units</title></rect>")


def _svg(methods: list, units: list) -> str:
    parts, overlays, paths = [], [], {}
    for j, (label, m) in enumerate(methods):
        x = _LABEL_W + j * (_BAR_W + _GAP)
        parts.append(f'<text x="{x}" y="14">{_e(label)} ({_e(m["modules"])} modules)</text>')
    for i, (first, stop, n) in enumerate(units):
        y = _HEAD_H + i * _ROW_H
        parts.append(f'<text x="0" y="{y + 11}">{_e(_row_label(first, stop, n))}</text>')
        for j, (_, m) in enumerate(methods):
            counts = m["rows"][i][2] if i < len(m["rows"]) else {}
            overlays.append(_bar(counts, _LABEL_W + j * (_BAR_W + _GAP), y, paths))
    parts += [f'<path fill="{c}" d="{"".join(d)}"/>' for c, d in paths.items()] + overlays
    width = _LABEL_W + len(methods) * (_BAR_W + _GAP)
    return (f'<svg width="{width}" height="{_HEAD_H + len(units) * _ROW_H + 4}" font-size="12">'
            f'{"".join(parts)}</svg>')


def network_svgs(methods: dict) -> list[str]:
    """The SVGs of one network: ``methods`` maps a method label to ``{"modules", "layers"}``
    (:func:`modgraph.study.summary.network_pictures`); rows follow the first method's layers."""
    if not methods:
        return []
    n_layers = max(len(m["layers"]) for m in methods.values())
    rows = {label: bin_layers(m["layers"] + [{}] * (n_layers - len(m["layers"]))) for label, m in methods.items()}
    first = next(iter(rows.values()))
    units = [(a, b, sum(c.values())) for a, b, c in first]
    items = [(label, {"modules": m["modules"], "rows": rows[label]}) for label, m in methods.items()]
    return [_svg(items[k:k + METHODS_PER_SVG], units) for k in range(0, len(items), METHODS_PER_SVG)]
