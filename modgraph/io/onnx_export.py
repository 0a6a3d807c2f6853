"""Export a :class:`~modgraph.network.LayeredNetwork` as an ONNX chain of ``Gemm`` layers.

Each layer becomes ``Gemm(h, W[out, in], b, transB=1)`` followed by its activation op
(none for ``identity``), so ONNX Runtime and any ONNX tool can run it. Activations without an
op of their own in opset 17 are written as the ops PyTorch's exporter writes for them, which
modgraph's ONNX reader reads back as the same activation: ``gelu`` in the exact Erf form
``Mul(Mul(z, Add(Erf(Div(z, √2)), 1)), 0.5)``, ``silu`` as ``Mul(z, Sigmoid(z))`` and ``relu6`` as
``Clip(z, 0, 6)``. The network's metadata, input names and unit names travel in
``metadata_props`` as JSON, and :func:`modgraph.io.load` reads them back: a network with
``gelu``, ``silu`` or ``relu6`` is read by the DAG reader (the composites branch) and handed back
as the same :class:`~modgraph.network.LayeredNetwork`, metadata and names included.

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
>>> export_onnx(LayeredNetwork([Layer.from_dense(np.ones((1, 2)), np.zeros(1), activation="gelu")]), path)
>>> [n.op_type for n in onnx.load(path).graph.node]
['Gemm', 'Div', 'Erf', 'Add', 'Mul', 'Mul']
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
#: Activations written as several ops (:func:`_composite_nodes`).
_COMPOSITE = ("gelu", "silu", "relu6")


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
        no float64 ``Elu`` or ``Erf`` kernel, so an ``elu`` or ``gelu`` network runs there in
        float32 only).
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
        z = output_name if (i == last and layer.activation == "identity") else f"layers.{i}.z"
        nodes.append(helper.make_node("Gemm", [h, w_name, b_name], [z], name=f"layers.{i}.gemm", transB=1))
        h = z
        if layer.activation != "identity":
            h = output_name if i == last else f"layers.{i}.h"
            act_nodes, act_inits = _activation_nodes(layer, f"layers.{i}.act", z, h, np_dtype)
            nodes += act_nodes
            inits += act_inits
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


def _activation_nodes(layer, name: str, z: str, out: str, np_dtype) -> tuple[list, list]:
    """The nodes computing ``out = activation(z)`` and the constants they read."""
    if layer.activation in _COMPOSITE:
        return _composite_nodes(layer.activation, name, z, out, np_dtype)
    op_type, attrs = _ACTIVATION_OPS[layer.activation]
    attrs = {"alpha": float(layer.alpha)} if attrs is None else attrs
    return [helper.make_node(op_type, [z], [out], name=name, **attrs)], []


def _composite_nodes(activation: str, name: str, z: str, out: str, np_dtype) -> tuple[list, list]:
    def const(key, value):
        return numpy_helper.from_array(np.array(value, dtype=np_dtype), f"{name}.{key}")

    node = helper.make_node
    if activation == "relu6":                                   # Clip(z, 0, 6)
        return [node("Clip", [z, f"{name}.min", f"{name}.max"], [out], name=name)], \
            [const("min", 0.0), const("max", 6.0)]
    if activation == "silu":                                    # z * Sigmoid(z)
        return [node("Sigmoid", [z], [f"{name}.sigmoid"], name=f"{name}.sigmoid"),
                node("Mul", [z, f"{name}.sigmoid"], [out], name=name)], []
    # gelu, exact: 0.5 * z * (1 + erf(z / sqrt(2))), the node order of PyTorch's exporter
    return [node("Div", [z, f"{name}.sqrt2"], [f"{name}.div"], name=f"{name}.div"),
            node("Erf", [f"{name}.div"], [f"{name}.erf"], name=f"{name}.erf"),
            node("Add", [f"{name}.erf", f"{name}.one"], [f"{name}.add"], name=f"{name}.add"),
            node("Mul", [z, f"{name}.add"], [f"{name}.mul"], name=f"{name}.mul"),
            node("Mul", [f"{name}.mul", f"{name}.half"], [out], name=name)], \
        [const("sqrt2", np.sqrt(2.0)), const("one", 1.0), const("half", 0.5)]


def _sparse_tensor(weight, np_dtype, name: str) -> onnx.SparseTensorProto:
    coo = weight.tocoo()
    linear = coo.row.astype(np.int64) * weight.shape[1] + coo.col.astype(np.int64)   # row-major, sorted
    values = numpy_helper.from_array(coo.data.astype(np_dtype), name)
    indices = numpy_helper.from_array(linear, f"{name}.indices")
    return helper.make_sparse_tensor(values, indices, list(weight.shape))
