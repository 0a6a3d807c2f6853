"""Unit graphs with module labels for other tools: GraphML, GEXF and CSV (``modgraph export``).

Every unit of the original network is a node (``u0``, ``u1``, ... in layer order) with scalar
attributes only (``dag-networks.md`` §4: networkx refuses graph-tool's vector attributes):
``unit`` (its name), ``layer``, ``index``, ``alive`` (1 when on an input-output path) and one
integer column per hierarchy level, ``module_l0`` (finest) … ``module_lK`` (−1: removed or dead).
Edges carry ``weight`` (|w|) and ``value`` (w). GraphML is read by networkx, igraph and graph-tool;
GEXF 1.2 by networkx and Gephi; CSV is the node table alone. A DAG's analysis exports the full
graph of its view with ``unit``, ``group``, ``op_type``, ``depth``, ``channel``, ``alive`` and the
module columns per node, ``weight`` and ``value`` (both the edge norm) and ``type`` per edge.

Examples
--------
>>> import pathlib, tempfile
>>> from modgraph.testing import random_network
>>> from modgraph.analyze import analyze_network
>>> a = analyze_network(random_network([3, 4, 2], seed=0), method="modularity", seed=0)
>>> nodes, edges, meta = unit_tables(a)
>>> sorted(nodes[0]), meta["method"]
(['alive', 'index', 'layer', 'module_l0', 'unit'], 'modularity')
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from modgraph.graph import build_unit_graph
from modgraph.io import atomic_path

__all__ = ["FORMATS", "EXPORT_VERSION", "unit_tables", "export_analysis", "to_graphml", "to_gexf", "to_csv"]

EXPORT_VERSION = "modgraph-export/1"


def _levels(analysis) -> list[np.ndarray]:
    p, g = analysis.partition, analysis.graph
    levels = [p.project(l) for l in range(len(p.levels))] if getattr(p, "levels", ()) else [p.labels]
    return [g.to_full_labels(l) for l in levels]


def unit_tables(analysis) -> tuple[list[dict], list[dict], dict]:
    """(nodes, edges, graph attributes) of the analysed network's full unit graph.

    For a DAG: the full graph of the analysis's view, nodes with ``unit`` (``"{group}:{k}"``),
    ``group``, ``op_type``, ``depth``, ``channel``, ``alive`` and the module columns; edges with
    ``weight`` and ``value`` (the edge norm) and ``type``; the graph attributes add ``view`` and ``edge_norm``.
    """
    if analysis.graph.is_dag:
        return _dag_tables(analysis)
    full = build_unit_graph(analysis.network)
    alive = np.zeros(full.n_units, dtype=bool)
    alive[analysis.graph.original_id] = True
    names = [*analysis.input_names]
    for l, layer in enumerate(analysis.network.layers, start=1):
        last = l == len(analysis.network.layers)
        names += analysis.output_names if last else [f"h{l}_{i + 1}" for i in range(layer.n_out)]
    levels = _levels(analysis)
    nodes = [{"unit": names[u], "layer": int(full.layer[u]), "index": int(full.index[u]), "alive": int(alive[u]),
              **{f"module_l{k}": int(lab[u]) for k, lab in enumerate(levels)}} for u in range(full.n_units)]
    edges = [{"source": int(s), "target": int(d), "weight": float(abs(v)), "value": float(v)}
             for s, d, v in zip(full.src, full.dst, full.value)]
    meta = {"method": analysis.partition.method, "seed": int(analysis.partition.seed or 0),
            "source": str(analysis.network.source or ""), "format": EXPORT_VERSION}
    return nodes, edges, meta


def _dag_tables(analysis):
    from modgraph.dag_edges import EDGE_TYPES

    g = analysis.graph
    full = build_unit_graph(analysis.network, view=g.view, edge_norm=g.edge_norm)
    alive = np.zeros(full.n_units, dtype=bool)
    alive[g.original_id] = True
    levels = _levels(analysis)
    names = full.unit_names()
    nodes = [{"unit": names[u], "group": full.group_names[full.group[u]], "op_type": full.group_ops[full.group[u]],
              "depth": int(full.layer[u]), "channel": int(full.index[u]), "alive": int(alive[u]),
              **{f"module_l{k}": int(lab[u]) for k, lab in enumerate(levels)}} for u in range(full.n_units)]
    edges = [{"source": int(s), "target": int(d), "weight": float(v), "value": float(v), "type": EDGE_TYPES[t]}
             for s, d, v, t in zip(full.src, full.dst, full.value, full.edge_type)]
    meta = {"method": analysis.partition.method, "seed": int(analysis.partition.seed or 0),
            "source": str(analysis.network.source or ""), "format": EXPORT_VERSION, "view": g.view,
            "edge_norm": g.edge_norm}
    return nodes, edges, meta


def _type(v, kind) -> str:
    if isinstance(v, bool) or isinstance(v, int):
        return {"graphml": "int", "gexf": "integer"}[kind]
    return {"graphml": "double", "gexf": "double"}[kind] if isinstance(v, float) else "string"


def to_graphml(nodes, edges, meta) -> str:
    """GraphML text with typed scalar keys (``d_<name>``)."""
    keys = []
    for dom, rows in (("node", nodes[:1]), ("edge", [{k: v for k, v in edges[0].items()
                                                      if k not in ("source", "target")}] if edges else []),
                      ("graph", [meta])):
        for r in rows:
            keys += [f'<key id="{dom[0]}_{k}" for="{dom}" attr.name="{k}" attr.type="{_type(v, "graphml")}"/>'
                     for k, v in r.items()]
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">', *keys,
           '<graph id="G" edgedefault="directed">',
           *(f'<data key="g_{k}">{_x(v)}</data>' for k, v in meta.items())]
    for u, n in enumerate(nodes):
        out.append(f'<node id="u{u}">' + "".join(f'<data key="n_{k}">{_x(v)}</data>' for k, v in n.items())
                   + "</node>")
    for e in edges:
        out.append(f'<edge source="u{e["source"]}" target="u{e["target"]}">'
                   + "".join(f'<data key="e_{k}">{v!r}</data>' if isinstance(v, float) else
                             f'<data key="e_{k}">{_x(v)}</data>' for k, v in e.items() if k not in ("source", "target"))
                   + "</edge>")
    out += ["</graph>", "</graphml>", ""]
    return "\n".join(out)


def _x(v) -> str:
    return quoteattr(str(v))[1:-1]


def to_gexf(nodes, edges, meta) -> str:
    """GEXF 1.2 text (networkx, Gephi): node attributes declared, ``unit`` as the node label."""
    cols = [k for k in nodes[0] if k != "unit"] if nodes else []
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<gexf xmlns="http://www.gexf.net/1.2draft" version="1.2">',
           f'<meta><description>{_x(meta)}</description></meta>',
           '<graph defaultedgetype="directed" mode="static">', '<attributes class="node">',
           *(f'<attribute id="{i}" title="{k}" type="{_type(nodes[0][k], "gexf")}"/>' for i, k in enumerate(cols)),
           '</attributes>', '<attributes class="edge"><attribute id="0" title="value" type="double"/></attributes>',
           "<nodes>"]
    for u, n in enumerate(nodes):
        vals = "".join(f'<attvalue for="{i}" value="{_x(n[k])}"/>' for i, k in enumerate(cols))
        out.append(f'<node id="u{u}" label={quoteattr(n["unit"])}><attvalues>{vals}</attvalues></node>')
    out.append("</nodes><edges>")
    for i, e in enumerate(edges):
        out.append(f'<edge id="{i}" source="u{e["source"]}" target="u{e["target"]}" weight="{e["weight"]!r}">'
                   f'<attvalues><attvalue for="0" value="{e["value"]!r}"/></attvalues></edge>')
    out += ["</edges>", "</graph>", "</gexf>", ""]
    return "\n".join(out)


def to_csv(nodes, edges, meta) -> str:
    """The node table: ``unit, layer, index, alive, module_l0, …`` (edges are left out)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(nodes[0]) if nodes else ["unit"], lineterminator="\n")
    w.writeheader()
    w.writerows(nodes)
    return buf.getvalue()


FORMATS = {"graphml": to_graphml, "gexf": to_gexf, "csv": to_csv}


def export_analysis(analysis, *, to: str, out) -> Path:
    """Write the analysis's unit graph and labels as ``to`` (a key of :data:`FORMATS`) to ``out``, atomically."""
    if to not in FORMATS:
        raise ValueError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}")
    text = FORMATS[to](*unit_tables(analysis))
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(out)
