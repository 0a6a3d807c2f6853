"""The end-to-end analysis: file → network → condensed unit graph → modules → module DAG → scores.

:func:`analyze_network` runs the pipeline on a :class:`~modgraph.network.LayeredNetwork` or a
:class:`~modgraph.dag.DagNetwork` (a DAG in one of the views of :func:`~modgraph.graph.build_unit_graph`);
:func:`analyze_file` loads any supported file first; :func:`write_analysis` writes
``analysis.json`` (schema in ``docs/analysis.md``) and the pictures, atomically and only
after everything has been computed, so a failure leaves no partial files behind.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modgraph.dag import DagNetwork
from modgraph.detect import detect
from modgraph.graph import UnitGraph, build_unit_graph, condense
from modgraph.hierarchy import ModuleDAG, module_dag
from modgraph.io import atomic_path, load
from modgraph.network import LayeredNetwork
from modgraph.partition import Partition
from modgraph.score import GroundTruth, score, truth_from_metadata

__all__ = ["Analysis", "analyze_network", "analyze_file", "render_analysis", "write_files", "write_analysis",
           "SCHEMA", "OUTPUT_FILES", "summary_row"]

SCHEMA = "modgraph-analysis/1.0"

#: The files :func:`render_analysis` makes, in the order it makes them.
OUTPUT_FILES = ("analysis.json", "network.png", "modules.png", "network.svg", "modules.svg")


@dataclass(frozen=True, eq=False)
class Analysis:
    network: LayeredNetwork | DagNetwork
    graph: UnitGraph            # the condensed graph the method ran on
    partition: Partition
    dag: ModuleDAG
    truth: GroundTruth | None
    scores: dict | None
    name: str

    @property
    def is_dag(self) -> bool:
        """True when the network is a (non-chain) DagNetwork: units are named ``"{group}:{k}"``."""
        return self.graph.is_dag

    @property
    def input_names(self) -> list[str]:
        if isinstance(self.network, DagNetwork):
            return [f"{g.name}:{k}" for g in self.network.groups if g.kind == "input" for k in range(g.n_units)]
        return list(self.network.input_names or [f"x{i + 1}" for i in range(self.network.n_inputs)])

    @property
    def output_names(self) -> list[str]:
        if isinstance(self.network, DagNetwork):
            return [f"{g.name}:{k}" for g in self.network.groups if g.kind == "output" for k in range(g.n_units)]
        names = self.network.layers[-1].unit_names
        return list(names or [f"y{i + 1}" for i in range(self.network.n_outputs)])

    def to_dict(self) -> dict:
        g, p = self.graph, self.partition
        if g.is_dag:
            return self._dag_dict()
        widths = [int((g.layer == l).sum()) for l in range(g.n_layers)]
        return {
            "schema": SCHEMA, "name": self.name, "source": self.network.source,
            "source_format": self.network.source_format, "network": self.network.summary(),
            "input_names": self.input_names, "output_names": self.output_names,
            "condensed": {"widths": widths, "n_units": g.n_units, "n_edges": g.n_edges,
                          "units": [[int(l), int(i)] for l, i in zip(g.layer, g.index)]},
            "partition": p.to_dict(),
            "unit_labels": g.to_full_labels(p.labels).tolist(),
            "dag": self.dag.to_dict(),
            "ground_truth": self.truth.to_dict() if self.truth else None,
            "scores": self.scores,
            **({"assumed": self.network.metadata["assumed"]} if self.network.metadata.get("assumed") else {}),
        }

    def _dag_dict(self) -> dict:
        """analysis.json of a DAG: units by name, the view and edge norm recorded (docs/analysis.md)."""
        g, p = self.graph, self.partition
        net = self.network
        summary = net.summary(edge_norm=g.edge_norm) if isinstance(net, DagNetwork) else net.summary()
        return {
            "schema": SCHEMA, "name": self.name, "source": net.source, "source_format": net.source_format,
            "network": summary, "view": g.view, "edge_norm": g.edge_norm,
            "input_names": self.input_names, "output_names": self.output_names,
            "condensed": {"widths": list(g.widths), "n_units": g.n_units, "n_edges": g.n_edges,
                          "groups": _group_counts(g), "units": g.unit_names()},
            "partition": p.to_dict(),
            "unit_labels": g.to_full_labels(p.labels).tolist(),
            "dag": self.dag.to_dict(),
            "ground_truth": self.truth.to_dict() if self.truth else None,
            "scores": self.scores,
        }


def _group_counts(g: UnitGraph) -> list[dict]:
    """Per group of a DAG view still holding units: name, kind, depth (= layer), units left."""
    counts = np.bincount(g.group, minlength=len(g.group_names))
    layer = np.zeros(len(g.group_names), np.int64)
    layer[g.group] = g.layer
    return [{"name": g.group_names[i], "kind": g.group_kinds[i], "op_type": g.group_ops[i], "layer": int(layer[i]),
             "n_units": int(counts[i])} for i in np.flatnonzero(counts)]


def _ends(network) -> tuple[int, int]:
    if isinstance(network, DagNetwork):
        return (sum(g.n_units for g in network.groups if g.kind == "input"),
                sum(g.n_units for g in network.groups if g.kind == "output"))
    return network.n_inputs, network.n_outputs


def _quiet(stage: str) -> None:
    pass


def analyze_network(network: LayeredNetwork | DagNetwork, *, method: str = "sculpting", seed: int = 1,
                    truth: GroundTruth | None = None, name: str | None = None, progress=None,
                    view: str = "split", edge_norm: str | None = None, **options) -> Analysis:
    """Condense, detect with ``method``, build the module DAG and score against the ground
    truth (``truth``, else the one in ``network.metadata``, else none).

    ``progress``, when given, is called with the name of each step as it starts
    (:class:`modgraph.progress.StageLog` prints the slow ones). ``view`` and ``edge_norm`` choose
    the unit graph (:func:`~modgraph.graph.build_unit_graph`); for a chain of dense layers the
    defaults give the chain's graph, bit for bit."""
    progress = progress or _quiet
    progress("condense")
    if isinstance(network, DagNetwork) and network.is_chain:
        network = network.to_layered()                      # the chain itself: same graph, same report
    graph = condense(build_unit_graph(network, view=view, edge_norm=edge_norm))
    n_in, n_out = _ends(network)
    if truth is None:
        truth = truth_from_metadata(network.metadata, source=network.source or "<network>")
    elif (truth.n_inputs, truth.n_outputs) != (n_in, n_out):
        raise ValueError(f"--truth describes {truth.n_inputs} inputs and {truth.n_outputs} outputs, "
                         f"but the network has {n_in} inputs and {n_out} outputs")
    progress(f"detect ({method})")
    partition = detect(graph, method=method, seed=seed, **options)
    progress("module DAG")
    dag = module_dag(graph, partition)
    progress("score")
    scores = score(graph, partition, truth, dag=dag) if truth is not None else None
    return Analysis(network, graph, partition, dag, truth, scores,
                    name or (Path(network.source).name if network.source else "network"))


def analyze_file(path, *, method: str = "sculpting", seed: int = 1, truth: GroundTruth | None = None,
                 progress=None, activations=None, view: str = "split", edge_norm: str | None = None,
                 **options) -> Analysis:
    """:func:`analyze_network` on ``load(path, activations=activations)``."""
    if progress:
        progress("load")
    return analyze_network(load(path, activations=activations), method=method, seed=seed, truth=truth,
                           name=Path(path).name, progress=progress, view=view, edge_norm=edge_norm, **options)


def render_analysis(analysis: Analysis) -> dict[str, bytes]:
    """The content of the :data:`OUTPUT_FILES`: ``analysis.json``, ``network.{png,svg}``, ``modules.{png,svg}``."""
    from modgraph.report.draw import draw_module_dag, draw_network

    title = f"{analysis.name}: {analysis.partition.method}, {analysis.partition.n_modules} modules"
    names = dict(input_names=analysis.input_names, output_names=analysis.output_names)
    content = {"analysis.json": json.dumps(analysis.to_dict(), indent=1).encode()}
    for fmt in ("png", "svg"):
        content[f"network.{fmt}"] = draw_network(analysis.graph, analysis.partition.labels, fmt=fmt,
                                                 title=title, **names)
        content[f"modules.{fmt}"] = draw_module_dag(analysis.dag, fmt=fmt, title=title, **names)
    return content


def write_files(out, content: dict[str, bytes]) -> list[Path]:
    """Write already rendered files (relative names → bytes) under ``out``, each atomically."""
    written = []
    for fname, data in content.items():
        with atomic_path(Path(out) / fname) as tmp:
            tmp.write_bytes(data)
        written.append(Path(out) / fname)
    return written


def write_analysis(analysis: Analysis, out) -> list[Path]:
    """Render, then write ``analysis.json`` and the pictures into ``out``."""
    return write_files(out, render_analysis(analysis))


def summary_row(analysis: Analysis) -> dict:
    """One flat row for the comparative CSV table."""
    s = analysis.scores or {}
    row = {"file": analysis.name, "source_format": analysis.network.source_format,
           **({"view": analysis.graph.view, "edge_norm": analysis.graph.edge_norm} if analysis.is_dag else {}),
           "method": analysis.partition.method, "seed": analysis.partition.seed,
           "units": analysis.graph.n_units, "edges": analysis.graph.n_edges,
           "modules": analysis.partition.n_modules,
           "success": "" if s.get("success") is None else int(bool(s["success"]))}
    for name, res in (s.get("criteria") or {}).items():
        row[name] = int(res["success"])
    for side in ("input", "output"):
        for k in ("nmi", "ari"):
            v = (s.get(side) or {}).get(k)
            row[f"{side}_{k}"] = "" if v is None else round(float(v), 4)
    return row
