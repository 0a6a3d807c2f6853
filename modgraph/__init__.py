"""modgraph: find the modules inside trained neural networks and the hierarchy they form.

Map of the package (one neutral value flows through pure functions)::

    file ──io.load──► LayeredNetwork | DagNetwork ──build_unit_graph(view=)──► UnitGraph ──condense──► UnitGraph
         ──detect(method)──► Partition / Hierarchy ──module_dag──► ModuleDAG ──score──► report

- :mod:`modgraph.network` — ``Layer``, ``LayeredNetwork``: the model every loader returns.
- :mod:`modgraph.dag` — ``DagNetwork``: the network as a DAG of unit groups (conv, dense, merges),
  a chain being ``DagNetwork.from_layered(net)``; :mod:`modgraph.dag_builder` — ``DagBuilder``, how
  readers build one; :mod:`modgraph.dag_edges` — ``unit_edges``: typed unit edges under an edge norm;
  :mod:`modgraph.dag_ops` — the numpy conv/pool kernels of its forward pass (docs/dag.md).
- :mod:`modgraph.io` — ``load`` (modgraph HDF5, ONNX, Keras .h5/.keras, PyTorch state dicts; chosen by
  content; a ``LayeredNetwork`` for a dense chain, a ``DagNetwork`` for an ONNX CNN or residual/concat
  graph, :mod:`modgraph.io.onnx_dag`), ``save`` (modgraph HDF5), ``export_onnx``.
- :mod:`modgraph.graph` — ``UnitGraph``, ``build_unit_graph`` (a DAG in the views ``split``, ``coupled``,
  ``filan``), ``condense``, ``drop_isolated``.
- :mod:`modgraph.detect` — ``detect(graph, method=..., seed=...)`` and the registry of methods
  (``sbm``, ``nested-sbm``, ``modularity``, ``spectral``, ``sculpting``); ``modgraph.detect`` as an
  attribute of this package is the function, the registry is ``modgraph.detect.DETECTORS``.
- :mod:`modgraph.partition` — ``Partition``, ``Hierarchy`` (canonical labels, −1 = removed).
- :mod:`modgraph.hierarchy` — ``module_dag``: modules, input support, outputs driven, levels, reuse.
- :mod:`modgraph.score` — scoring against a task's ground truth (Neural Sculpting §6), NMI/ARI.
- :mod:`modgraph.tasks` — Boolean task specs (``parse_task``, ``read_task``) and the truth table and
  ground truth derived from them (the trainers import them; ``modgraph analyze --truth SPEC`` uses them).
- :mod:`modgraph.nulls` — shuffle null models and significance (p, z).
- :mod:`modgraph.lesion` — lesion tests of modules (numpy forward pass; chains and DAGs: channels of any group).
- :mod:`modgraph.analyze` — the end-to-end pipeline behind ``modgraph analyze``; :mod:`modgraph.report`
  its text and pictures; :mod:`modgraph.study` studies: a TOML spec → stored runs, tables, report.html
  (``modgraph study``); :mod:`modgraph.export` GraphML/GEXF/CSV for other tools.
- :mod:`modgraph.errors` — ``ModgraphError``, ``FormatError``.
- :mod:`modgraph.cli` — the ``modgraph`` command (``study``, ``export`` in :mod:`modgraph.cli_study`).

modgraph never imports torch or ``trainers``. The names above are imported on first use (PEP 562),
so ``import modgraph`` costs no numpy, scipy, h5py or graph-tool (the ``modgraph`` command relies on
it, :mod:`modgraph.console`).
"""
import importlib
import sys
import types

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported on first use (PEP 562), so that ``import modgraph``
#: (and the ``modgraph`` command before it parses its arguments) costs no numpy, scipy, h5py or graph-tool.
_LAZY = {"FormatError": "modgraph.errors", "ModgraphError": "modgraph.errors", "UnitGraph": "modgraph.graph",
         "build_unit_graph": "modgraph.graph", "condense": "modgraph.graph", "drop_isolated": "modgraph.graph",
         "load": "modgraph.io", "save": "modgraph.io", "Layer": "modgraph.network",
         "LayeredNetwork": "modgraph.network", "DagNetwork": "modgraph.dag", "DagBuilder": "modgraph.dag_builder",
         "unit_edges": "modgraph.dag_edges", "Hierarchy": "modgraph.partition", "Partition": "modgraph.partition",
         "detect": "modgraph.detect", "module_dag": "modgraph.hierarchy"}
__all__ = ["Layer", "LayeredNetwork", "DagNetwork", "DagBuilder", "unit_edges", "UnitGraph", "build_unit_graph",
           "condense", "drop_isolated", "load", "save", "detect", "Partition", "Hierarchy", "module_dag", "FormatError",
           "ModgraphError"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'modgraph' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``modgraph.detect`` stays the function: importing the subpackage does not replace it."""

    def __setattr__(self, name, value):
        if name == "detect" and isinstance(value, types.ModuleType):
            value = value.detect
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
