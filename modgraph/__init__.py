"""modgraph: find the modules inside trained neural networks and the hierarchy they form.

Map of the package (one neutral value flows through pure functions)::

    file ──io.load──► LayeredNetwork ──build_unit_graph──► UnitGraph ──condense──► UnitGraph

- :mod:`modgraph.network` — ``Layer``, ``LayeredNetwork``: the model every loader returns.
- :mod:`modgraph.io` — ``load`` (modgraph HDF5, ONNX, Keras .h5, PyTorch state dicts; chosen by
  content), ``save`` (modgraph HDF5), ``export_onnx`` (an ONNX Gemm chain).
- :mod:`modgraph.graph` — ``UnitGraph``, ``build_unit_graph``, ``condense``, ``drop_isolated``.
- :mod:`modgraph.errors` — ``ModgraphError``, ``FormatError``.
- :mod:`modgraph.cli` — the ``modgraph`` command.

modgraph never imports torch.
"""
from modgraph.errors import FormatError, ModgraphError
from modgraph.graph import UnitGraph, build_unit_graph, condense, drop_isolated
from modgraph.io import load, save
from modgraph.network import Layer, LayeredNetwork

__version__ = "0.1.0"
__all__ = ["Layer", "LayeredNetwork", "UnitGraph", "build_unit_graph", "condense", "drop_isolated",
           "load", "save", "FormatError", "ModgraphError"]
