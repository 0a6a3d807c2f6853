"""Reading and writing networks.

``load(path)`` reads any supported file into a :class:`~modgraph.network.LayeredNetwork` for a
chain of dense layers, a :class:`~modgraph.dag.DagNetwork` otherwise (CNNs, branches), choosing the
reader by content; ``save(network, path, metadata=...)`` writes modgraph's own HDF5 format (``docs/format.md``;
version 2.0 for a DagNetwork that is not a chain); ``export_onnx(network, path)`` writes an ONNX Gemm chain.
Readers plug in through :func:`register_reader`; every reader checks declared sizes against
stored bytes and the ceilings of :class:`Limits` before allocating (:mod:`modgraph.io.limits`).
"""
from modgraph.io.atomic import atomic_path
from modgraph.io.limits import Limits, using_limits
from modgraph.io.registry import READERS, Reader, load, register_reader
from modgraph.io.hdf5 import FORMAT_TAG, FORMAT_VERSION, read_hdf5, save
from modgraph.io.onnx_export import export_onnx
from modgraph.io.onnx import read_onnx
from modgraph.io.keras import read_keras_h5
from modgraph.io.keras_zip import read_keras_zip
from modgraph.io.torch_state import read_torch_state
from modgraph.io.safetensors import read_safetensors

__all__ = ["load", "save", "read_hdf5", "read_onnx", "read_keras_h5", "read_keras_zip", "read_torch_state",
           "read_safetensors", "export_onnx", "atomic_path", "Limits", "using_limits", "Reader", "READERS",
           "register_reader",
           "FORMAT_TAG", "FORMAT_VERSION"]
