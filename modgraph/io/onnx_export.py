"""Export a :class:`~modgraph.network.LayeredNetwork` as an ONNX chain of ``Gemm`` layers.

Each layer becomes ``Gemm(h, W[out, in], b, transB=1)`` followed by its activation op
(none for ``identity``), so ONNX Runtime and any ONNX tool can run it. The network's
metadata, input names and unit names travel in ``metadata_props`` as JSON, and
:func:`modgraph.io.load` reads them back.

Pruned edges: by default the weights are written dense (pruned entries are 0), the form
every ONNX tool accepts; the edge set is then recovered on load as the non-zero entries.
With ``sparse=True`` each weight is a ``sparse_initializer`` holding exactly the stored
entries (surviving weights that are exactly 0.0 included); ONNX Runtime runs such files,
but onnx-ir based tools (the onnxscript optimizer) silently drop sparse initializers.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from modgraph.network import Layer, LayeredNetwork
>>> net = LayeredNetwork([Layer.from_dense(np.array([[1.0, -2.0]]), np.array([0.5]), activation="tanh")])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "net.onnx"
>>> export_onnx(net, path)
>>> import onnx
>>> [n.op_type for n in onnx.load(path).graph.node]
['Gemm', 'Tanh']
"""
from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from modgraph.errors import FormatError
from modgraph.io.atomic import atomic_path
from modgraph.network import LayeredNetwork

__all__ = ["export_onnx", "OPSET"]

#: The ONNX opset the exporter targets (every op used exists unchanged since opset 13).
OPSET = 17
_PROTOBUF_LIMIT = 2**31 - 1
_DTYPES = {"float32": (np.float32, TensorProto.FLOAT), "float64": (np.float64, TensorProto.DOUBLE)}
_ACTIVATION_OPS = {
    "relu": ("Relu", {}), "sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}),
    "softmax": ("Softmax", {"axis": -1}), "log_softmax": ("LogSoftmax", {"axis": -1}),
    "leaky_relu": ("LeakyRelu", None), "elu": ("Elu", None),
}


def export_onnx(network: LayeredNetwork, path, *, dtype: str = "float32", sparse: bool = False,
                input_name: str = "input", output_name: str = "output") -> None:
    """Write ``network`` to ``path`` as an ONNX model, atomically.

    Parameters
    ----------
    network : LayeredNetwork
    path : str or Path
        The ``.onnx`` file to write (replaced only once the new file is complete).
    dtype : {"float32", "float64"}
        Element type of the weights and of the graph's input and output (ONNX Runtime has
        no float64 ``Elu`` kernel, so an ``elu`` network runs there in float32 only).
    sparse : bool
        Write each weight as a ``sparse_initializer`` holding exactly the surviving edges.
    input_name, output_name : str
        Names of the graph's input and output tensors (batch dimension ``"batch"``).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(sorted(_DTYPES))}")
    model = _build_model(network, _DTYPES[dtype], sparse=sparse, names=(input_name, output_name))
    if model.ByteSize() > _PROTOBUF_LIMIT:
        raise FormatError(path, "ONNX model", "a model under the 2 GiB protobuf limit",
                          f"{model.ByteSize()} bytes (save it with modgraph.io.save instead)")
    data = model.SerializeToString()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _build_model(network: LayeredNetwork, dtypes, *, sparse: bool, names) -> onnx.ModelProto:
    np_dtype, elem = dtypes
    input_name, output_name = names
    nodes, inits, sparse_inits = [], [], []
    h = input_name
    last = len(network.layers) - 1
    for i, layer in enumerate(network.layers):
        w_name, b_name = f"layers.{i}.weight", f"layers.{i}.bias"
        if sparse:
            sparse_inits.append(_sparse_tensor(layer.weight, np_dtype, w_name))
        else:
            inits.append(numpy_helper.from_array(layer.weight.toarray().astype(np_dtype, copy=False), w_name))
        inits.append(numpy_helper.from_array(layer.bias.astype(np_dtype), b_name))
        op = _activation_node(layer, f"layers.{i}.act")
        z = output_name if (i == last and op is None) else f"layers.{i}.z"
        nodes.append(helper.make_node("Gemm", [h, w_name, b_name], [z], name=f"layers.{i}.gemm", transB=1))
        h = z
        if op is not None:
            op.input.append(z)
            op.output.append(output_name if i == last else f"layers.{i}.h")
            nodes.append(op)
            h = op.output[0]
    graph = helper.make_graph(
        nodes, "modgraph_network",
        [helper.make_tensor_value_info(input_name, elem, ["batch", network.n_inputs])],
        [helper.make_tensor_value_info(output_name, elem, ["batch", network.n_outputs])],
        initializer=inits, sparse_initializer=sparse_inits)
    model = helper.make_model(graph, producer_name="modgraph", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8                      # readable by every onnxruntime since 1.10
    props = {"modgraph.metadata": network.metadata, "modgraph.input_names": network.input_names,
             "modgraph.unit_names": [layer.unit_names for layer in network.layers],
             "modgraph.alphas": [layer.alpha for layer in network.layers]}      # attributes are float32
    helper.set_model_props(model, {k: json.dumps(v, sort_keys=True) for k, v in props.items()})
    return model


def _activation_node(layer, name: str):
    if layer.activation == "identity":
        return None
    op_type, attrs = _ACTIVATION_OPS[layer.activation]
    attrs = {"alpha": float(layer.alpha)} if attrs is None else attrs
    return helper.make_node(op_type, [], [], name=name, **attrs)


def _sparse_tensor(weight, np_dtype, name: str) -> onnx.SparseTensorProto:
    coo = weight.tocoo()
    linear = coo.row.astype(np.int64) * weight.shape[1] + coo.col.astype(np.int64)   # row-major, sorted
    values = numpy_helper.from_array(coo.data.astype(np_dtype), name)
    indices = numpy_helper.from_array(linear, f"{name}.indices")
    return helper.make_sparse_tensor(values, indices, list(weight.shape))
