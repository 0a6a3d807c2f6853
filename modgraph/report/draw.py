"""Pictures a person can look at: the layered network with modules coloured, and the module DAG.

A network of more than :data:`MAX_UNITS` units (or a DAG view with more than one group in a
layer and more than :data:`MAX_UNITS` // 4 units) is drawn *aggregated*: one node per group (a
chain's group is its layer) drawn as a bar split into its modules' colours, edges between groups
as lines whose width is the total |w| between them, so thousands of units never become a grey slab.

Both functions return the rendered bytes (PNG or SVG), so callers can write every output
file atomically once everything has been computed.
"""
from __future__ import annotations

import io

import numpy as np

from modgraph.graph import UnitGraph
from modgraph.hierarchy import ModuleDAG

__all__ = ["draw_network", "draw_module_dag", "draw_aggregated", "aggregate", "MAX_UNITS"]

_MAX_EDGES = 20000
#: Above this many units the network picture is aggregated (one node per group).
MAX_UNITS = 600


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
    """The layered network, inputs on the left, each unit coloured by its module (aggregated by
    group above :data:`MAX_UNITS` units, see the module docstring)."""
    from matplotlib.collections import LineCollection

    labels = np.asarray(labels)
    n_mod = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    if graph.n_units > MAX_UNITS or (graph.is_dag and graph.n_units > MAX_UNITS // 4
                                     and len(set(graph.group.tolist())) > graph.n_layers):
        return draw_aggregated(graph, labels, fmt=fmt, title=title)
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
    if graph.is_dag:
        ax.set_xticks(range(graph.n_layers), [f"depth {l}" for l in range(graph.n_layers)])
    else:
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


def aggregate(graph: UnitGraph, labels) -> dict:
    """The aggregated picture's data: per group its layer, name and units per module; per pair of
    groups joined by edges the number of edges and their total |w| (a chain's groups are its layers)."""
    labels = np.asarray(labels)
    grp = graph.unit_group
    n_groups = len(graph.group_names) if graph.is_dag else graph.n_layers
    names = list(graph.group_names) if graph.is_dag else ["inputs"] + [f"hidden {l}" for l in
                                                                      range(1, graph.n_layers - 1)] + ["outputs"]
    present = np.unique(grp)
    layer = np.zeros(n_groups, np.int64)
    layer[grp] = graph.layer
    n_mod = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    counts = np.zeros((n_groups, n_mod + 1), np.int64)           # last column: unassigned
    np.add.at(counts, (grp, np.where(labels >= 0, labels, n_mod)), 1)
    key = grp[graph.src].astype(np.int64) * n_groups + grp[graph.dst]
    pairs, inv = np.unique(key, return_inverse=True)
    total = np.bincount(inv, weights=graph.weight) if pairs.size else np.zeros(0)
    n_edges = np.bincount(inv) if pairs.size else np.zeros(0, np.int64)
    return {"groups": [{"group": int(g), "name": names[g], "layer": int(layer[g]),
                        "modules": {str(m): int(c) for m, c in enumerate(counts[g, :n_mod]) if c},
                        "unassigned": int(counts[g, n_mod])} for g in present.tolist()],
            "edges": [{"source": int(k // n_groups), "target": int(k % n_groups), "n_edges": int(n),
                       "weight": float(w)} for k, n, w in zip(pairs.tolist(), n_edges.tolist(), total.tolist())],
            "n_modules": n_mod}


def draw_aggregated(graph: UnitGraph, labels, *, fmt: str = "png", title: str = "") -> bytes:
    """One node per group (bar split by module, height ~ units), edge width = total |w| between groups."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    agg = aggregate(graph, labels)
    n_mod = agg["n_modules"]
    colours = _colours(n_mod)
    by_layer: dict[int, list] = {}
    for row in agg["groups"]:
        by_layer.setdefault(row["layer"], []).append(row)
    n_layers = max(by_layer) + 1 if by_layer else 1
    tallest = max(len(v) for v in by_layer.values()) if by_layer else 1
    biggest = max(sum(r["modules"].values()) + r["unassigned"] for r in agg["groups"]) if agg["groups"] else 1
    pos = {}
    for l, rows in by_layer.items():
        for k, row in enumerate(rows):
            pos[row["group"]] = (l, k - (len(rows) - 1) / 2)
    fig = _figure(3.0 + 0.9 * n_layers, 2.5 + 0.9 * tallest)
    ax = fig.add_subplot()
    if agg["edges"]:
        w = np.array([e["weight"] for e in agg["edges"]])
        seg = [(pos[e["source"]], pos[e["target"]]) for e in agg["edges"]]
        ax.add_collection(LineCollection(seg, colors=(0.35, 0.35, 0.35, 0.5),
                                         linewidths=0.4 + 7.0 * w / (w.max() or 1.0), zorder=1))
    width = 0.28
    for row in agg["groups"]:
        x, y = pos[row["group"]]
        n = sum(row["modules"].values()) + row["unassigned"]
        height = 0.15 + 0.65 * n / biggest
        bottom = y - height / 2
        parts = [(colours[int(m)], c) for m, c in row["modules"].items()] + [("white", row["unassigned"])]
        for colour, c in parts:
            if c:
                h = height * c / n
                ax.add_patch(Rectangle((x - width / 2, bottom), width, h, facecolor=colour, edgecolor="black",
                                       linewidth=0.3, zorder=3))
                bottom += h
        if len(agg["groups"]) <= 80:
            ax.text(x, y + height / 2 + 0.04, f"{row['name']} ({n})", ha="center", va="bottom", fontsize=6, zorder=4)
    for m in range(min(n_mod, 20)):
        ax.add_patch(Rectangle((0, 0), 0, 0, facecolor=colours[m], label=f"module {m}"))
    ax.set_xlim(-0.7, n_layers - 0.3)
    ax.set_ylim(-tallest / 2 - 0.6, tallest / 2 + 0.6)
    ax.set_xticks(range(n_layers), [f"depth {l}" if graph.is_dag else ("inputs" if l == 0 else f"layer {l}")
                                    for l in range(n_layers)], fontsize=7)
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if 0 < n_mod <= 20:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(n_mod, 6), fontsize=8, frameon=False)
    ax.set_title(title or f"{n_mod} modules")
    ax.set_xlabel(f"{graph.n_units} units in {len(agg['groups'])} groups, {graph.n_edges} edges "
                  "(one node per group, bar height ~ units; line width = total |w|)", fontsize=7)
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
        ins = _names(m.inputs, None if m.inputs and isinstance(m.inputs[0], str) else input_names, "x")
        outs = _names(m.outputs, None if m.outputs and isinstance(m.outputs[0], str) else output_names, "y")
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
    text = ",".join(i if isinstance(i, str) else names[i] if names is not None else f"{prefix}{i + 1}"
                    for i in indices[:8])
    return text + (f",… ({len(indices)})" if len(indices) > 8 else "")
