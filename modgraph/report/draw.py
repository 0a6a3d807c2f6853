"""Pictures a person can look at: the layered network with modules coloured, and the module DAG.

Both functions return the rendered bytes (PNG or SVG), so callers can write every output
file atomically once everything has been computed.
"""
from __future__ import annotations

import io

import numpy as np

from modgraph.graph import UnitGraph
from modgraph.hierarchy import ModuleDAG

__all__ = ["draw_network", "draw_module_dag"]

_MAX_EDGES = 20000


def _figure(width, height):
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=100)


def _colours(n: int):
    from matplotlib import colormaps
    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(max(n, 1))]


def _render(fig, fmt: str) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "modgraph"}):  # text stays text
        fig.savefig(buf, format=fmt, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def _positions(graph: UnitGraph, labels: np.ndarray) -> np.ndarray:
    """x = layer, y = rank inside the layer after sorting by module (modules stay contiguous)."""
    pos = np.zeros((graph.n_units, 2))
    for l in range(graph.n_layers):
        units = graph.units_in_layer(l)
        order = units[np.lexsort((graph.index[units], labels[units]))]
        n = order.size
        pos[order, 0] = l
        pos[order, 1] = (np.arange(n) - (n - 1) / 2) / max(n - 1, 1) if n > 1 else 0.0
    return pos


def draw_network(graph: UnitGraph, labels, *, fmt: str = "png", title: str = "",
                 input_names=None, output_names=None) -> bytes:
    """The layered network, inputs on the left, each unit coloured by its module."""
    from matplotlib.collections import LineCollection

    labels = np.asarray(labels)
    n_mod = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    colours = _colours(n_mod)
    pos = _positions(graph, labels)
    fig = _figure(2.0 + 1.8 * graph.n_layers, 6.0)
    ax = fig.add_subplot()
    edges = np.argsort(-graph.weight)[:_MAX_EDGES]
    if edges.size:
        w = graph.weight[edges]
        alpha = 0.15 + 0.6 * w / (w.max() or 1.0)
        seg = np.stack([pos[graph.src[edges]], pos[graph.dst[edges]]], axis=1)
        ax.add_collection(LineCollection(seg, colors=[(0.3, 0.3, 0.3, a) for a in alpha], linewidths=0.8))
    area = float(np.clip(2500.0 / max(graph.n_units, 1), 4.0, 160.0))
    for m in range(n_mod):
        sel = labels == m
        ax.scatter(pos[sel, 0], pos[sel, 1], s=area, color=colours[m], edgecolors="black",
                   linewidths=0.4, zorder=3, label=f"module {m}")
    unl = labels < 0
    if unl.any():
        ax.scatter(pos[unl, 0], pos[unl, 1], s=area, color="white", edgecolors="grey", zorder=3,
                   label="unassigned")
    _name_ends(ax, graph, pos, input_names, output_names)
    ax.set_xticks(range(graph.n_layers), ["inputs"] + [f"hidden {l}" for l in range(1, graph.n_layers - 1)]
                  + ["outputs"])
    ax.set_yticks([])
    ax.set_xlim(-0.6, graph.n_layers - 0.4)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if n_mod <= 20:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(n_mod + unl.any(), 6),
                  fontsize=8, frameon=False, markerscale=0.7)
    ax.set_title(title or f"{n_mod} modules")
    return _render(fig, fmt)


def _name_ends(ax, graph, pos, input_names, output_names) -> None:
    for l, names, dx, ha in ((0, input_names, -0.1, "right"), (graph.n_layers - 1, output_names, 0.1, "left")):
        units = graph.units_in_layer(l)
        if names is None or units.size > 40:
            continue
        for u in units:
            ax.text(pos[u, 0] + dx, pos[u, 1], names[graph.index[u]], ha=ha, va="center", fontsize=7)


def draw_module_dag(dag: ModuleDAG, *, fmt: str = "png", title: str = "", input_names=None,
                    output_names=None) -> bytes:
    """Modules as boxes placed by level, arrows weighted by the number of unit edges."""
    n = len(dag.modules)
    colours = _colours(n)
    levels = np.array([m.level for m in dag.modules]) if n else np.zeros(0)
    n_levels = int(levels.max()) + 1 if n else 1
    fig = _figure(2.5 + 2.2 * n_levels, 1.5 + 1.1 * max([int((levels == l).sum()) for l in range(n_levels)] + [1]))
    ax = fig.add_subplot()
    pos = {}
    for l in range(n_levels):
        ids = [m.id for m in dag.modules if m.level == l]
        for k, i in enumerate(ids):
            pos[i] = (l, (k - (len(ids) - 1) / 2))
    max_edges = max([e.n_edges for e in dag.edges] + [1])
    for e in dag.edges:
        (x0, y0), (x1, y1) = pos[e.source], pos[e.target]
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops=dict(arrowstyle="-|>", lw=0.8 + 3.0 * e.n_edges / max_edges, color="0.35",
                                    shrinkA=22, shrinkB=22, connectionstyle="arc3,rad=0.08"))
    for m in dag.modules:
        x, y = pos[m.id]
        ins = _names(m.inputs, input_names, "x")
        outs = _names(m.outputs, output_names, "y")
        text = f"M{m.id} ({m.n_units} units)\nin: {ins}" + (f"\nout: {outs}" if m.outputs else "")
        ax.text(x, y, text, ha="center", va="center", fontsize=7, zorder=3,
                bbox=dict(boxstyle="round,pad=0.4", fc=colours[m.id], ec="black", alpha=0.9))
    ax.set_xlim(-0.7, n_levels - 0.3)
    span = max([abs(p[1]) for p in pos.values()] + [0.5])
    ax.set_ylim(-span - 0.8, span + 0.8)
    ax.axis("off")
    ax.set_title(title or f"module DAG: {n} modules, {len(dag.edges)} edges")
    return _render(fig, fmt)


def _names(indices, names, prefix) -> str:
    if not indices:
        return "-"
    text = ",".join(names[i] if names is not None else f"{prefix}{i + 1}" for i in indices[:8])
    return text + (f",… ({len(indices)})" if len(indices) > 8 else "")
