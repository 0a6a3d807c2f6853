"""Fuzz every reader (issue 16): structure-aware, seeded mutation of valid files, each read in a
capped child process (modgraph.io.sandbox: RLIMIT_AS cap, time limit).

    nice -n 10 .venv/bin/python benchmarks/fuzz.py --minutes 3 [--reader onnx] [--seed 0]
        [--cap-mb 2048] [--timeout 10] [--findings DIR]

Readers: onnx, modgraph-hdf5, keras-h5, keras, torch, safetensors. Per reader, valid seed files are
written first (dense and sparse ONNX exports, an ONNX CNN DAG with BN, a shortcut Add, grouped and
depthwise convs, pools and a Concat, an NHWC ONNX graph in the tf2onnx pattern, modgraph HDF5 chains
and a DAG, Keras 2/3 .h5 layouts, a .keras archive, a functional Keras CNN DAG saved by Keras as .h5
and .keras, torch state dicts with prune masks and a conv
chain with BN, safetensors chains in F32/F16/BF16 and a CNN);
each case picks a seed file and applies one to three mutations, most of them aware of the format
(ONNX protobuf fields: dims, data types, raw data, external data, ops, attributes, sparse indices,
metadata; HDF5 objects: attributes, shapes, dtypes, unwritten / compressed / external / huge-chunk
datasets, deleted objects; the JSON model config; zip directory fields and members; torch tensors,
dtypes and pickle bytes; the safetensors header length, its JSON fields, offsets, dtypes and shapes,
and truncation), the rest byte-level (flips, interesting integers, cuts, splices). A case is a
*finding* when its read ends in anything but a network or a FormatError: another exception (a
traceback), MemoryError (the cap was reached), a crash, a hang, or a traceback on stderr. Findings
are written to ``--findings`` (input + outcome) to become regression tests. The product's ceilings are
set to fit the cap (``MODGRAPH_MAX_ARRAY_BYTES`` = cap / 4, ``MODGRAPH_MAX_LOAD_BYTES`` = cap / 2, unless
set): a mutant that really writes gigabytes is then refused by the ceiling, as it would be for a user. Prints one table:
executions, rate, distinct outcomes (messages with numbers and paths masked), counts per kind.

Time limits nest: ``load`` reads libhdf5 files in its own child with a limit of
``MODGRAPH_READ_TIMEOUT`` (3 s) + 60 s per GB (modgraph.io.isolate), well under ``--timeout``
(10 s), so a file libhdf5 hangs on is a ``refused`` case, the clean refusal users get; a ``hang``
here means a hang outside an isolated read. ``--timeout`` must stay above the product's limit
(the harness refuses a smaller one).

The harness guards itself too (``benchmarks/fuzz_child.py``): every structure-aware mutation of an
HDF5 file (modgraph-hdf5, keras-h5, and the weights inside .keras archives) opens a possibly damaged
file with h5py, so it runs in a forked child (30 s, 4 GB of address space above the harness's, its
stderr discarded) that hands back the random state it ended with; a mutation whose child crashes,
hangs or fails is *lost* (counted in the table's ``mut. lost`` column, not a finding: no reader ran),
the case keeps its bytes from before it and goes on, and the cases remain a function of (reader, seed).
The campaign itself runs in a supervised child: if it dies, a message says how, and its temporary
folder and the processes it started are removed. A progress line is printed every ``--progress`` s.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import re
import shutil
import struct
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "benchmarks"))

import fuzz_child  # noqa: E402  (benchmarks/fuzz_child.py, beside this file)
from modgraph.io import export_onnx, save  # noqa: E402
from modgraph.io.sandbox import Sandbox  # noqa: E402
from modgraph.network import Layer, LayeredNetwork  # noqa: E402

READERS = ("onnx", "modgraph-hdf5", "keras-h5", "keras", "torch", "safetensors")
FINDING_KINDS = ("error", "memory", "crash", "hang")
_INTERESTING = [0, 1, 2, 3, -1, -2, 7, 255, 256, 2**15, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40,
                2**53, 2**62, 2**63 - 1, 30000, 10**6, 10**9, 10**12]


def _net(rng: np.random.Generator, widths=(5, 4, 3), density=0.6, activations=("relu", "tanh")) -> LayeredNetwork:
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        w = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < density)
        layers.append(Layer.from_dense(w.astype(np.float32), rng.normal(size=n_out).astype(np.float32),
                                       activation=activations[i % len(activations)]))
    return LayeredNetwork(layers, input_names=[f"x{j}" for j in range(widths[0])], metadata={"seed": 1})


def _dag(rng: np.random.Generator):
    from modgraph.dag_builder import DagBuilder
    b = DagBuilder()
    x = b.input("x", channels=1, spatial=(4, 4))
    c = b.activation(b.conv("c", x, rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2)), "relu")
    d = b.conv("d", c, rng.normal(size=(2, 2, 1, 1)))
    y = b.activation(b.add("skip", [c, d]), "tanh")
    return b.build(outputs=[y])


# -- seed files ---------------------------------------------------------------------------------------
def _keras_config(widths, activations, functional=False):
    layers = [{"class_name": "InputLayer", "config": {"name": "input", "batch_shape": [None, widths[0]]}}]
    for i, act in enumerate(activations):
        layers.append({"class_name": "Dense", "config": {"name": f"fc{i}", "activation": act, "use_bias": True,
                                                         "units": widths[i + 1]}})
    layers.insert(2, {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.1}})
    return {"class_name": "Sequential", "config": {"name": "seq", "layers": layers}}


def _keras_h5(path, rng, keras3: bool):
    import h5py
    widths, acts = (6, 4, 3), ["relu", "softmax"]
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_keras_config(widths, acts))
        f.attrs["keras_version"] = "3.15.1" if keras3 else "2.21.0"
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = ["input", "fc0", "drop", "fc1"]
        for i in range(len(acts)):
            g = mw.create_group(f"fc{i}")
            names = [f"seq/fc{i}/kernel", f"seq/fc{i}/bias"] if keras3 else [f"fc{i}/kernel:0", f"fc{i}/bias:0"]
            g.attrs["weight_names"] = names
            g[names[0]] = rng.normal(size=(widths[i], widths[i + 1])).astype(np.float32)
            g[names[1]] = rng.normal(size=widths[i + 1]).astype(np.float32)


def _keras_zip(path, rng):
    import h5py
    widths, acts = (6, 4, 3), ["relu", "sigmoid"]
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for i, key in enumerate(["dense", "dense_1"]):
            v = f.create_group(f"layers/{key}/vars")
            v.attrs["name"] = f"fc{i}"
            v["0"] = rng.normal(size=(widths[i], widths[i + 1])).astype(np.float32)
            v["1"] = rng.normal(size=widths[i + 1]).astype(np.float32)
        f.create_group("layers/dropout/vars").attrs["name"] = "drop"
        f.create_group("vars")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(_keras_config(widths, acts)))
        z.writestr("model.weights.h5", buf.getvalue())


def _keras_dag(path: Path, rng) -> None:
    """A functional Keras 3 model (torch backend) saved by Keras itself (.h5 or .keras by suffix): Conv2D,
    BatchNormalization, ReLU, DepthwiseConv2D, a grouped 1x1 Conv2D, Add, Concatenate, pools, Flatten,
    Dense; weights drawn from ``rng`` (the file's save date differs between runs, nothing else)."""
    import os
    import warnings
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    L = keras.layers
    inp = keras.Input((4, 4, 2), name="img")
    r1 = L.ReLU(name="r1")(L.BatchNormalization(name="bn1")(L.Conv2D(4, 3, padding="same", name="c1")(inp)))
    dw = L.DepthwiseConv2D(3, padding="same", name="dw")(r1)
    c2 = L.Conv2D(4, 1, groups=2, name="c2")(r1)
    t = L.Concatenate(name="cat")([L.Add(name="add")([dw, c2]), r1])
    t = L.AveragePooling2D(2, name="ap")(L.MaxPooling2D(2, strides=1, padding="same", name="mp")(t))
    model = keras.Model(inp, L.Dense(3, activation="softmax", name="fc")(L.Flatten(name="flat")(t)), name="dag")
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([(np.abs(rng.normal(size=w.shape)) + 0.5 if v.path.endswith("variance")
                                else rng.normal(size=w.shape)).astype(np.float32) for v, w in zip(layer.weights, ws)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(path)


def _onnx_cnn(path: Path, rng) -> None:
    """A CNN DAG built with onnx.helper (deterministic bytes): Conv+bias, BatchNormalization, Relu, a 1x1
    shortcut Add, grouped and depthwise Conv, MaxPool / AveragePool branches joined by a channel Concat,
    GlobalAveragePool, Flatten, Gemm."""
    from onnx import TensorProto, helper, numpy_helper
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)          # noqa: E731
    inits = {"w1": f(4, 2, 3, 3), "b1": f(4), "g": f(4), "be": f(4), "mu": f(4), "var": np.abs(f(4)) + 0.5,
             "w2": f(4, 4, 1, 1), "wg": f(4, 2, 3, 3), "wd": f(4, 1, 3, 3), "fcw": f(3, 8), "fcb": f(3)}
    N = helper.make_node
    nodes = [N("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             N("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["bn"], name="bn1", epsilon=1e-5),
             N("Relu", ["bn"], ["r"], name="relu1"),
             N("Conv", ["r", "w2"], ["s"], name="shortcut"),
             N("Add", ["r", "s"], ["a"], name="add"),
             N("Conv", ["a", "wg"], ["gc"], name="grouped", group=2, pads=[1, 1, 1, 1]),
             N("Conv", ["gc", "wd"], ["dc"], name="depthwise", group=4, pads=[1, 1, 1, 1]),
             N("MaxPool", ["dc"], ["mp"], name="maxpool", kernel_shape=[2, 2], strides=[2, 2]),
             N("AveragePool", ["a"], ["ap"], name="avgpool", kernel_shape=[2, 2], strides=[2, 2]),
             N("Concat", ["mp", "ap"], ["cat"], name="concat", axis=1),
             N("GlobalAveragePool", ["cat"], ["gap"], name="gap"),
             N("Flatten", ["gap"], ["fl"], name="flatten", axis=1),
             N("Gemm", ["fl", "fcw", "fcb"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fuzz")
    path.write_bytes(model.SerializeToString())


def _onnx_nhwc(path: Path, rng) -> None:
    """The tf2onnx pattern: NHWC input, Transpose -> Conv -> Relu -> Transpose -> Reshape -> MatMul + Add."""
    from onnx import TensorProto, helper, numpy_helper
    f = lambda *shape: rng.normal(size=shape).astype(np.float32)          # noqa: E731
    inits = {"w": f(3, 2, 3, 3), "shape": np.array([1, 48], np.int64), "m": f(48, 2), "bias": f(2)}
    N = helper.make_node
    nodes = [N("Transpose", ["x"], ["t"], name="to_nchw", perm=[0, 3, 1, 2]),
             N("Conv", ["t", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             N("Relu", ["c"], ["r"], name="relu"),
             N("Transpose", ["r"], ["h"], name="to_nhwc", perm=[0, 2, 3, 1]),
             N("Reshape", ["h", "shape"], ["fl"], name="flatten"),
             N("MatMul", ["fl", "m"], ["mm"], name="dense"),
             N("Add", ["mm", "bias"], ["z"], name="dense_bias"),
             N("Sigmoid", ["z"], ["y"], name="out")]
    graph = helper.make_graph(nodes, "nhwc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="fuzz")
    path.write_bytes(model.SerializeToString())


def _torch_files(folder: Path, rng) -> list[Path]:
    import torch
    out = []
    sd = {"0.weight": torch.tensor(rng.normal(size=(4, 5)), dtype=torch.float32), "0.bias": torch.zeros(4),
          "2.weight": torch.tensor(rng.normal(size=(3, 4)), dtype=torch.float32), "2.bias": torch.ones(3)}
    torch.save(sd, folder / "sd.pt")
    pruned = {"fc.weight_orig": torch.ones(3, 5), "fc.weight_mask": torch.tensor(rng.random((3, 5)) < 0.5).float(),
              "fc.bias": torch.zeros(3), "out.weight": torch.ones(2, 3, dtype=torch.float64)}
    torch.save({"state_dict": pruned, "epoch": 3}, folder / "pruned.pt")
    torch.save({"0.weight": torch.ones(2, 3, dtype=torch.float16)}, folder / "legacy.pt",
               _use_new_zipfile_serialization=False)
    t = lambda *shape: torch.tensor(rng.normal(size=shape), dtype=torch.float32)       # noqa: E731
    cnn = {"c1.weight": t(4, 3, 3, 3), "c1.bias": t(4), "bn1.weight": t(4), "bn1.bias": t(4),
           "bn1.running_mean": t(4), "bn1.running_var": t(4).abs() + 0.5, "bn1.num_batches_tracked": torch.tensor(7),
           "c2.weight": t(6, 4, 3, 3), "fc.weight": t(5, 6 * 4 * 4), "fc.bias": t(5)}
    torch.save(cnn, folder / "cnn.pt")                 # a conv chain: activations and flatten order assumed
    out += [folder / "sd.pt", folder / "pruned.pt", folder / "legacy.pt", folder / "cnn.pt"]
    return out


def _safetensors_write(path: Path, tensors: dict, metadata=None) -> None:
    """A safetensors file written by hand (header length, JSON header, packed data; dtype names as given)."""
    header, blobs, offset = {}, [], 0
    for key, (dtype, arr) in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[key] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _safetensors_files(folder: Path, rng) -> list[Path]:
    f32 = lambda *shape: rng.normal(size=shape).astype(np.float32)          # noqa: E731
    _safetensors_write(folder / "chain.safetensors", {"0.weight": ("F32", f32(4, 5)), "0.bias": ("F32", f32(4)),
                                                      "2.weight": ("F32", f32(3, 4)), "2.bias": ("F32", f32(3))},
                       metadata={"format": "pt"})
    bf16 = (f32(3, 4).view(np.uint32) >> 16).astype(np.uint16)
    _safetensors_write(folder / "half.safetensors", {"fc.weight": ("F16", f32(4, 6).astype(np.float16)),
                                                     "out.weight": ("BF16", bf16)})
    _safetensors_write(folder / "cnn.safetensors", {
        "c1.weight": ("F32", f32(4, 3, 3, 3)), "c1.bias": ("F32", f32(4)), "bn1.weight": ("F32", f32(4)),
        "bn1.bias": ("F32", f32(4)), "bn1.running_mean": ("F32", f32(4)),
        "bn1.running_var": ("F32", np.abs(f32(4)) + 0.5), "c2.weight": ("F32", f32(6, 4, 3, 3)),
        "fc.weight": ("F32", f32(5, 6 * 4 * 4)), "fc.bias": ("F32", f32(5))})
    return [folder / "chain.safetensors", folder / "half.safetensors", folder / "cnn.safetensors"]


def seed_files(reader: str, folder: Path, seed: int = 0) -> list[Path]:
    """Valid files the reader accepts (each checked to load)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    if reader == "onnx":
        export_onnx(_net(rng), folder / "dense.onnx")
        export_onnx(_net(rng, (8, 6, 2), 0.3, ("leaky_relu", "sigmoid")), folder / "sparse.onnx", sparse=True)
        export_onnx(_net(rng, (3, 2)), folder / "f64.onnx", dtype="float64")
        _onnx_cnn(folder / "cnn.onnx", rng)
        _onnx_nhwc(folder / "nhwc.onnx", rng)
        return [folder / n for n in ("dense.onnx", "sparse.onnx", "f64.onnx", "cnn.onnx", "nhwc.onnx")]
    if reader == "modgraph-hdf5":
        save(_net(rng), folder / "net.h5")
        save(_net(rng, (7, 5, 5, 2), 0.4, ("elu", "relu", "softmax")), folder / "deep.h5")
        save(_dag(rng), folder / "dag.h5")                        # format 2.0: a DAG with a conv and a skip
        return [folder / "net.h5", folder / "deep.h5", folder / "dag.h5"]
    if reader == "keras-h5":
        _keras_h5(folder / "k3.h5", rng, keras3=True)
        _keras_h5(folder / "k2.h5", rng, keras3=False)
        _keras_dag(folder / "dag.h5", rng)
        return [folder / "k3.h5", folder / "k2.h5", folder / "dag.h5"]
    if reader == "keras":
        _keras_zip(folder / "m.keras", rng)
        _keras_dag(folder / "dag.keras", rng)
        return [folder / "m.keras", folder / "dag.keras"]
    if reader == "torch":
        return _torch_files(folder, rng)
    if reader == "safetensors":
        return _safetensors_files(folder, rng)
    raise ValueError(f"unknown reader {reader!r}; choose from {', '.join(READERS)}")


# -- byte-level mutations ---------------------------------------------------------------------------
def _bytes_mutation(data: bytes, r: random.Random) -> bytes:
    b = bytearray(data)
    if not b:
        return bytes([r.randrange(256)])
    op = r.randrange(7)
    if op == 0:                                  # bit flips
        for _ in range(r.randint(1, 8)):
            i = r.randrange(len(b))
            b[i] ^= 1 << r.randrange(8)
    elif op == 1:                                # an interesting little-endian integer
        width = r.choice([1, 2, 4, 8])
        i = r.randrange(max(1, len(b) - width))
        b[i:i + width] = (r.choice(_INTERESTING) % (1 << (8 * width))).to_bytes(width, "little")
    elif op == 2:                                # truncate
        b = b[:r.randrange(len(b))]
    elif op == 3:                                # delete a span
        i = r.randrange(len(b))
        del b[i:i + r.randint(1, 64)]
    elif op == 4:                                # duplicate a span
        i = r.randrange(len(b))
        j = r.randrange(len(b))
        b[j:j] = b[i:i + r.randint(1, 256)]
    elif op == 5:                                # random bytes
        i = r.randrange(len(b))
        b[i:i + 16] = r.randbytes(16)
    else:                                        # a varint-ish big number (protobuf lengths)
        i = r.randrange(len(b))
        b[i:i + 1] = bytes([0xFF] * r.randint(1, 9) + [0x01])
    return bytes(b)


# -- ONNX -------------------------------------------------------------------------------------------
def _mutate_onnx(path: Path, r: random.Random) -> None:
    import onnx
    from onnx import TensorProto, helper
    model = onnx.load(str(path), load_external_data=False)
    g = model.graph
    op = r.randrange(12)
    tensors = list(g.initializer) + [s.values for s in g.sparse_initializer]
    if op == 0 and tensors:                                          # dims
        t = r.choice(tensors)
        if t.dims:
            t.dims[r.randrange(len(t.dims))] = r.choice(_INTERESTING + [-1, -(2**40)])
        else:
            t.dims.append(r.choice(_INTERESTING))
    elif op == 1 and tensors:                                        # data type
        r.choice(tensors).data_type = r.choice(list(TensorProto.DataType.values()) + [99, -3])
    elif op == 2 and tensors:                                        # raw data cut or grown
        t = r.choice(tensors)
        if t.HasField("raw_data"):
            raw = t.raw_data
            t.raw_data = raw[:r.randrange(len(raw) + 1)] if r.random() < 0.5 else raw + r.randbytes(r.randint(1, 9))
        else:
            t.float_data.extend([1.0] * r.randint(1, 5))
    elif op == 3 and g.initializer:                                  # external data
        t = r.choice(list(g.initializer))
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        loc = r.choice(["../../etc/passwd", "/etc/passwd", "missing.bin", path.name, "", "a:b", "sub/../x.bin"])
        t.external_data.add(key="location", value=loc)
        t.external_data.add(key="offset", value=str(r.choice([0, 8, -8, 10**12])))
        t.external_data.add(key="length", value=r.choice([str(n) for n in (0, 4, 24, 10**9)] + ["x"]))
    elif op == 4 and g.node:                                         # op type
        r.choice(list(g.node)).op_type = r.choice(["Conv", "LSTM", "MatMul", "Gemm", "Add", "Relu", "Identity",
                                                   "ArgMax", "Softmax", "Sub", "Concat", "Constant", "Bogus", ""])
    elif op == 5 and g.node:                                         # rewire an input
        n = r.choice(list(g.node))
        names = [i.name for i in g.input] + [t.name for t in g.initializer] + [o for m in g.node for o in m.output]
        if n.input:
            n.input[r.randrange(len(n.input))] = r.choice(names + ["", "nowhere"])
        else:
            n.input.append(r.choice(names))
    elif op == 6 and g.node:                                         # attributes
        n = r.choice(list(g.node))
        name = r.choice(["transA", "transB", "alpha", "beta", "axis", "to", "value"])
        n.attribute.append(helper.make_attribute(name, r.choice([0, 1, 2, -1, 1e30, float("nan"), "s"])))
    elif op == 7 and g.sparse_initializer:                           # sparse dims / indices
        s = r.choice(list(g.sparse_initializer))
        if r.random() < 0.5 and s.dims:
            s.dims[r.randrange(len(s.dims))] = r.choice(_INTERESTING)
        else:
            idx = s.indices
            idx.ClearField("raw_data")
            n = r.randint(0, 6)
            idx.ClearField("dims")
            idx.dims.append(n)
            idx.data_type = TensorProto.INT64
            idx.int64_data.extend([r.choice(_INTERESTING + [-5]) for _ in range(n)])
    elif op == 8:                                                    # metadata props
        key = r.choice(["modgraph.metadata", "modgraph.input_names", "modgraph.unit_names", "modgraph.alphas"])
        helper.set_model_props(model, {key: r.choice(["{", "[]", "5", "[1, 2]", '["a"]', "null", "[[1]]", '{"a": 1}'])})
    elif op == 9:                                                    # delete a node or an initializer
        seq = r.choice([g.node, g.initializer, g.input, g.output])
        if len(seq):
            del seq[r.randrange(len(seq))]
    elif op == 10 and g.node:                                        # duplicate a node (branches, cycles)
        n = r.choice(list(g.node))
        g.node.append(n)
    else:                                                            # graph input shape
        if g.input:
            dims = g.input[0].type.tensor_type.shape.dim
            if dims:
                dims[r.randrange(len(dims))].dim_value = r.choice(_INTERESTING[1:12])
    path.write_bytes(model.SerializeToString())


# -- HDF5 -------------------------------------------------------------------------------------------
def _h5_objects(f):
    import h5py
    groups, datasets = [f], []
    f.visititems(lambda name, obj: (datasets if isinstance(obj, h5py.Dataset) else groups).append(obj))
    return groups, datasets


def _json_mutation(text: str, r: random.Random) -> str:
    try:
        obj = json.loads(text)
    except (ValueError, TypeError):
        return text[: r.randrange(len(text) + 1)]
    nodes = []

    def walk(o):
        if isinstance(o, dict):
            nodes.append(o)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            nodes.append(o)
            for v in o:
                walk(v)
    walk(obj)
    node = r.choice(nodes)
    value = r.choice([None, 0, -1, 10**12, "relu", "Conv2D", "BatchNormalization", "Activation", "LeakyReLU",
                      "ReLU", "gelu", [], {}, "fc0", True, 1.5, [None, 3], {"class_name": "function", "config": "tanh"}])
    if isinstance(node, dict) and node:
        key = r.choice(list(node))
        if r.random() < 0.2:
            del node[key]
        else:
            node[key] = value
    elif isinstance(node, list) and node:
        i = r.randrange(len(node))
        if r.random() < 0.3:
            node.insert(i, node[i])
        elif r.random() < 0.3:
            del node[i]
        else:
            node[i] = value
    return json.dumps(obj)


#: The largest dataset a mutation reads back to rewrite it (a dataset declared bigger by an earlier
#: mutation is materialized up to this, so a mutant can really store more than the product's ceiling):
#: with it a mutation's peak memory (read, converted copy, chunk buffers) stays far below
#: MUTATION_HEADROOM_BYTES, so whether a mutation fits never depends on the process it runs in.
MATERIALIZE_MAX_BYTES = 2**30


def _mutate_h5_file(f, r: random.Random) -> None:
    import h5py
    groups, datasets = _h5_objects(f)
    op = r.randrange(10)
    if op == 0 and datasets:                                         # replace a dataset, declared bigger
        ds = r.choice(datasets)
        parent, name, shape = ds.parent, ds.name.rsplit("/", 1)[1], ds.shape or (1,)
        del parent[name]
        new = tuple(r.choice([0, 1, 2, 7, 30000, 10**6, 10**9]) if r.random() < 0.5 else s for s in shape)
        kind = r.randrange(4)
        if kind == 0:
            parent.create_dataset(name, shape=new, dtype="f4", chunks=True if math_prod(new) else None)
        elif kind == 1:                                              # compressed, one chunk written
            d = parent.create_dataset(name, shape=new, dtype="f4", compression="gzip",
                                      chunks=tuple(max(1, min(s, 512)) for s in new) if math_prod(new) else None)
            if math_prod(new):
                d[tuple(slice(0, 1) for _ in new)] = 1.0
        elif kind == 2:
            parent.create_dataset(name, shape=new, dtype="f4", maxshape=tuple(None for _ in new),
                                  chunks=tuple(r.choice([1, 1000, 2**16]) for _ in new))
        else:
            parent.create_dataset(name, data=np.zeros(shape, r.choice(["i8", "u1", "f2", "c8", "S3", "?"])))
    elif op == 1 and datasets:                                       # another ndim or dtype, same data
        ds = r.choice(datasets)
        parent, name = ds.parent, ds.name.rsplit("/", 1)[1]
        if ds.size * ds.dtype.itemsize > MATERIALIZE_MAX_BYTES:      # declared by an earlier mutation
            raise ValueError("too big to rewrite")                   # (the bytes fallback takes over)
        data = ds[()]
        del parent[name]
        data = np.asarray(data)
        choice = r.randrange(4)
        if choice == 0:
            data = data.reshape(-1, 1) if data.ndim == 1 else data.reshape(-1)
        elif choice == 1 and data.dtype.kind == "f":
            data = data.astype(r.choice(["f2", "f8", "i4"]))
        elif choice == 2 and data.size:
            data = data.copy()
            data.flat[r.randrange(data.size)] = r.choice([np.nan, np.inf, -1, 10**9]) if data.dtype.kind in "fi" else data.flat[0]
        elif choice == 3:
            data = data[: r.randrange(max(1, len(data)))] if data.ndim else data
        parent.create_dataset(name, data=data)
    elif op == 2 and datasets:                                       # external storage
        ds = r.choice(datasets)
        parent, name, shape = ds.parent, ds.name.rsplit("/", 1)[1], ds.shape or (1,)
        del parent[name]
        parent.create_dataset(name, shape=shape, dtype="f4", external=[("/etc/hostname", 0, h5py.h5f.UNLIMITED)])
    elif op in (3, 4):                                               # an attribute
        obj = r.choice(groups + datasets)
        keys = list(obj.attrs)
        if keys and r.random() < 0.8:
            key = r.choice(keys)
            value = obj.attrs[key]
            if isinstance(value, (str, bytes)) and r.random() < 0.7:
                text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
                obj.attrs[key] = _json_mutation(text, r)
            else:
                obj.attrs[key] = r.choice([np.int64(10**12), np.array([2, 10**9]), "1.0", "2.0", "sigmoid", "gelu",
                                           np.array([3.5, np.nan]), np.array([], np.int64), "x", np.float64(np.nan),
                                           np.array(["a", "b"], dtype=h5py.string_dtype()), np.array([-1, 3])])
        elif keys:
            del obj.attrs[r.choice(keys)]
    elif op == 5:                                                    # delete an object
        victims = [o for o in groups[1:] + datasets]
        if victims:
            v = r.choice(victims)
            del v.parent[v.name.rsplit("/", 1)[1]]
    elif op == 6 and groups:                                         # a stray object
        g = r.choice(groups)
        g.create_group(r.choice(["999", "extra", "vars", "layers", "weight"]) + str(r.randrange(3)))
    elif op == 7 and datasets:                                       # rename
        ds = r.choice(datasets)
        ds.parent.move(ds.name.rsplit("/", 1)[1], r.choice(["0", "1", "kernel:0", "bias", "data", "zz"]))
    elif op == 8 and len(groups) > 2:                                # soft link loops / to elsewhere
        g = r.choice(groups[1:])
        g[r.choice(["loop", "vars", "weight"])] = h5py.SoftLink(r.choice(["/", g.name, "/nowhere"]))
    else:                                                            # a string dataset where a float was
        if datasets:
            ds = r.choice(datasets)
            parent, name = ds.parent, ds.name.rsplit("/", 1)[1]
            del parent[name]
            parent.create_dataset(name, data=["a", "bb"], dtype=h5py.string_dtype())


def math_prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def _mutate_h5(path: Path, r: random.Random) -> None:
    import h5py
    with h5py.File(path, "a") as f:
        _mutate_h5_file(f, r)


# -- zip archives (.keras, torch) -------------------------------------------------------------------
def _zip_directory_mutation(data: bytes, r: random.Random) -> bytes:
    b = bytearray(data)
    entries = [m.start() for m in re.finditer(rb"PK\x01\x02", bytes(b))]
    locals_ = [m.start() for m in re.finditer(rb"PK\x03\x04", bytes(b))]
    if not entries:
        return _bytes_mutation(data, r)
    if r.random() < 0.7:
        e = r.choice(entries)
        field, width = r.choice([(10, 2), (20, 4), (24, 4), (42, 4), (28, 2)])   # method, sizes, offset, name len
    else:
        e = r.choice(locals_) if locals_ else r.choice(entries)
        field, width = r.choice([(8, 2), (18, 4), (22, 4), (26, 2)])
    value = r.choice([0, 8, 12, 14, 99, 2**16 - 1, 2**31, 2**32 - 2, 2**32 - 1, r.randrange(1 << (8 * width))])
    b[e + field:e + field + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    return bytes(b)


def _mutate_keras(path: Path, r: random.Random) -> None:
    op = r.randrange(5)
    if op == 0:
        path.write_bytes(_zip_directory_mutation(path.read_bytes(), r))
        return
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    if op == 1:                                                      # the model config
        members["config.json"] = _json_mutation(members["config.json"].decode(), r).encode()
    elif op == 2:                                                    # the inner weights file
        import h5py
        tmp = path.with_suffix(".inner.h5")
        tmp.write_bytes(members["model.weights.h5"])
        _mutate_h5(tmp, r)
        members["model.weights.h5"] = tmp.read_bytes()
        tmp.unlink()
        del h5py
    elif op == 3:                                                    # drop, add or corrupt a member
        name = r.choice(list(members) + ["extra.bin"])
        if name in members and r.random() < 0.5:
            del members[name]
        else:
            members[name] = _bytes_mutation(members.get(name, b"x"), r)
    method = zipfile.ZIP_DEFLATED if op == 4 or r.random() < 0.3 else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        for name, payload in members.items():
            z.writestr(name, payload)


def _mutate_torch(path: Path, r: random.Random) -> None:
    import torch
    data = path.read_bytes()
    op = r.randrange(5)
    if op == 0 and data.startswith(b"PK"):
        path.write_bytes(_zip_directory_mutation(data, r))
    elif op == 1 and data.startswith(b"PK"):                         # pickle bytes or a storage record
        with zipfile.ZipFile(path) as z:
            members = {i.filename: z.read(i) for i in z.infolist()}
        pkl = [n for n in members if n.endswith("data.pkl")]
        name = pkl[0] if pkl and r.random() < 0.7 else r.choice(list(members))
        members[name] = _bytes_mutation(members[name], r)
        method = zipfile.ZIP_DEFLATED if r.random() < 0.2 else zipfile.ZIP_STORED
        with zipfile.ZipFile(path, "w", method) as z:
            for n, payload in members.items():
                z.writestr(n, payload)
    elif op == 2:                                                    # odd but valid torch contents
        odd = r.choice([
            lambda: {"0.weight": torch.ones(3, 2, dtype=r.choice([torch.int64, torch.bool, torch.complex64,
                                                                   torch.bfloat16, torch.uint8]))},
            lambda: {"0.weight": torch.ones(3, 2).to_sparse()},
            lambda: {"0.weight": torch.ones(3, 2)[:, :1].expand(3, 4)},
            lambda: {"0.weight": torch.empty(0, 3)},
            lambda: {"0.weight": torch.ones(2, 3), "0.bias": torch.ones(5)},
            lambda: {"0.weight": torch.ones(2, 3), "1.weight": torch.ones(4, 7)},
            lambda: {"0.weight": torch.full((2, 3), float("nan"))},
            lambda: {"a": {"b": {"c.weight": torch.ones(2, 2)}}},
            lambda: {"state_dict": [torch.ones(2)]},
            lambda: {"0.weight_orig": torch.ones(2, 3), "0.weight_mask": torch.ones(3, 2)},
            lambda: {"0.weight": torch.ones(2, 3), "0.running_var": torch.ones(2)},
            lambda: {1: torch.ones(2, 2)},
            lambda: {"0.weight": torch.ones(2, 3, 4)},
            lambda: {"0.weight": torch.ones(1, 10**6)[:, ::10**5]},
        ])()
        torch.save(odd, path, _use_new_zipfile_serialization=r.random() < 0.8)
    else:
        path.write_bytes(_bytes_mutation(data, r))


def _mutate_safetensors(path: Path, r: random.Random) -> None:
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else 0
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        header = None
    op = r.randrange(6)
    if op == 0 or not isinstance(header, dict):                      # the header length
        v = r.choice([r.choice(_INTERESTING) % 2**64, n + r.choice([-9, -1, 1, 7, 8]), len(data), len(data) - 8])
        path.write_bytes(struct.pack("<Q", max(0, v) % 2**64) + data[8:])
        return
    body = data[8 + n:]
    keys = [k for k in header if k != "__metadata__"] or ["x"]
    key = r.choice(keys)
    entry = header.setdefault(key, {})
    if op == 1 and isinstance(entry, dict):                          # data offsets: holes, overlaps, huge, odd
        off = entry.get("data_offsets", [0, 0])
        entry["data_offsets"] = r.choice([
            lambda: [off[0], off[1] + r.choice([-4, -1, 1, 4])], lambda: [off[0] + 4, off[1]],
            lambda: [0, off[1] - off[0]], lambda: [off[1], off[0]], lambda: [0, r.choice(_INTERESTING)],
            lambda: [r.choice(_INTERESTING), r.choice(_INTERESTING)], lambda: [off[0]], lambda: "0,4",
            lambda: [1.5, 2], lambda: None])()
    elif op == 2 and isinstance(entry, dict):                        # dtypes
        entry["dtype"] = r.choice(["F64", "F16", "BF16", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "C64",
                                   "f32", "", None, 32, "F32"])
    elif op == 3 and isinstance(entry, dict):                        # shapes
        shape = list(entry.get("shape", [1]))
        entry["shape"] = r.choice([lambda: shape[::-1], lambda: shape + [1], lambda: shape[:-1], lambda: [],
                                   lambda: [r.choice(_INTERESTING)] + shape[1:], lambda: [-1] + shape[1:],
                                   lambda: [10**6, 10**6], lambda: [2**62, 4], lambda: ["3"], lambda: 5])()
    elif op == 4:                                                    # JSON fields: keys, metadata, types
        choice = r.randrange(6)
        if choice == 0:
            header[key + ".x" if r.random() < 0.5 else r.choice(["", "weight", "0.weight_mask", "1"])] = \
                header.pop(key)
        elif choice == 1:
            header["__metadata__"] = r.choice([{"format": 3}, [1], "pt", {"a": {"b": 1}}, None])
        elif choice == 2:
            header[key] = r.choice([[], "F32", 0, None, {"dtype": "F32"}, {**entry, "extra": 1}])
        elif choice == 3:
            header.pop(key)
        elif choice == 4:
            header = r.choice([[header], "header", None, {}])
        else:
            header[r.choice(keys)] = dict(entry)                     # a key aliasing another's bytes
        text = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(text)) + text + body)
        return
    else:                                                            # truncation
        cut = r.choice([8 + n + len(body) // 2, len(data) - 1, 8 + n, 8 + n // 2, 4, 0])
        path.write_bytes(data[:cut])
        return
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


_MUTATORS = {"onnx": _mutate_onnx, "modgraph-hdf5": _mutate_h5, "keras-h5": _mutate_h5, "keras": _mutate_keras,
             "torch": _mutate_torch, "safetensors": _mutate_safetensors}


#: Readers whose mutations open files with h5py: each such mutation runs in a forked child (fuzz_child)
H5_MUTATED = ("modgraph-hdf5", "keras-h5", "keras")
MUTATION_TIMEOUT_S = 30.0            # a mutation takes milliseconds: past this, libhdf5 spins
MUTATION_HEADROOM_BYTES = 4 * 2**30  # address space a mutation child may add to the harness's


def mutate(reader: str, seed_path: Path, out: Path, r: random.Random) -> list[str]:
    """Write one mutant of ``seed_path`` to ``out``: 1-3 mutations, structure-aware or byte-level.

    Returns why each lost mutation was lost (usually none): for the readers in :data:`H5_MUTATED`
    each structure-aware mutation runs in a forked child (``fuzz_child.in_child``), since libhdf5
    can crash or spin on a damaged file; one that crashes, hangs or raises past its fallback leaves
    ``out`` as it was, advances ``r`` by one draw and is lost, and the case goes on. The cases stay
    a function of (reader, seed): the child hands back the state of ``r`` it ended with.
    """
    shutil.copyfile(seed_path, out)
    lost = []
    for _ in range(r.choice([1, 1, 2, 3])):
        if r.random() >= 0.75:
            out.write_bytes(_bytes_mutation(out.read_bytes(), r))
        elif reader not in H5_MUTATED:
            _structured_mutation(reader, out, r)
        else:
            why = _isolated_mutation(reader, out, r)
            if why:
                lost.append(why)
    return lost


def _structured_mutation(reader: str, out: Path, r: random.Random) -> None:
    try:
        _MUTATORS[reader](out, r)
    except Exception:                         # noqa: BLE001 - a mutation the writer libraries refuse
        out.write_bytes(_bytes_mutation(out.read_bytes(), r))


def _isolated_mutation(reader: str, out: Path, r: random.Random) -> str:
    """``_structured_mutation`` in a forked child; "" or why it was lost (``out`` and ``r`` then restored,
    ``r`` advanced by one draw)."""
    before = out.read_bytes()

    def step() -> bytes:
        _structured_mutation(reader, out, r)
        version, internal, gauss = r.getstate()
        return json.dumps([version, list(internal), gauss]).encode()

    data, why = fuzz_child.in_child(step, timeout_s=MUTATION_TIMEOUT_S, headroom_bytes=MUTATION_HEADROOM_BYTES)
    if data is not None:
        version, internal, gauss = json.loads(data)
        r.setstate((version, tuple(internal), gauss))
        return ""
    out.write_bytes(before)
    r.random()
    return why


_MASKS = [(re.compile(r"/[^\s:'\"]*"), "PATH"), (re.compile(r"0x[0-9a-f]+"), "HEX"), (re.compile(r"-?\d+(\.\d+)?"), "N")]


def signature(kind: str, message: str) -> str:
    """An outcome with paths and numbers masked (the distinct-outcome key)."""
    text = message.strip().splitlines()[-1] if kind in FINDING_KINDS and message.strip() else message
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return f"{kind}: {text[:240]}"


def is_finding(outcome, timeout_s: float) -> bool:
    return outcome.kind in FINDING_KINDS or "Traceback" in outcome.stderr


def fuzz(reader: str, *, seconds: float | None = None, cases: int | None = None, seed: int = 0,
         cap_bytes: int = 2 * 2**30, timeout_s: float = 10.0, findings: Path | None = None,
         sandbox: Sandbox | None = None, tmp_root: Path | None = None, progress_s: float | None = None) -> dict:
    """Run mutants of ``reader``'s seed files until ``seconds`` pass or ``cases`` are done; returns counts.

    The cases are made in a temporary folder under ``tmp_root`` (removed at the end); every
    ``progress_s`` seconds a progress line is printed. ``stats["lost"]`` counts the mutations lost
    to a crash, hang or exception of their child (see :func:`mutate`), by reason: they are not
    findings (no reader ran), and the case goes on with the mutations that worked."""
    r = random.Random(f"{reader}:{seed}")
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{reader}-", dir=tmp_root))
    own = sandbox is None
    box = sandbox or Sandbox(cap_bytes=cap_bytes, timeout_s=timeout_s)
    stats = {"reader": reader, "executions": 0, "kinds": {}, "signatures": {}, "findings": [], "max_seconds": 0.0,
             "lost": {}}
    try:
        seeds = seed_files(reader, work / "seeds", seed)
        for path in seeds:                     # the control: every seed file loads
            o = box.run(path)
            if o.kind != "ok":
                raise RuntimeError(f"seed file {path.name} does not load: {o.kind} {o.message[-300:]}")
        suffix = {"onnx": ".onnx", "keras": ".keras", "torch": ".pt", "safetensors": ".safetensors"}.get(reader, ".h5")
        start = last = time.perf_counter()
        while True:
            if progress_s is not None and time.perf_counter() - last >= progress_s:
                last = time.perf_counter()
                print(f"  [{reader}] {stats['executions']} cases in {last - start:.0f} s, outcomes "
                      f"{json.dumps(stats['kinds'], sort_keys=True)}, findings {len(stats['findings'])}, "
                      f"mutations lost {sum(stats['lost'].values())}", flush=True)
            if cases is not None and stats["executions"] >= cases:
                break
            if seconds is not None and time.perf_counter() - start >= seconds:
                break
            case = work / f"case{suffix}"
            for why in mutate(reader, r.choice(seeds), case, r):
                stats["lost"][why] = stats["lost"].get(why, 0) + 1
            o = box.run(case)
            stats["executions"] += 1
            stats["kinds"][o.kind] = stats["kinds"].get(o.kind, 0) + 1
            sig = signature(o.kind, o.message)
            stats["signatures"][sig] = stats["signatures"].get(sig, 0) + 1
            stats["max_seconds"] = max(stats["max_seconds"], o.seconds)
            if is_finding(o, timeout_s):
                stats["findings"].append({"signature": sig, "message": o.message[-2000:], "stderr": o.stderr[-1000:]})
                if findings is not None:
                    findings.mkdir(parents=True, exist_ok=True)
                    n = len(stats["findings"])
                    shutil.copyfile(case, findings / f"{reader}-{seed}-{n:03d}{suffix}")
                    (findings / f"{reader}-{seed}-{n:03d}.txt").write_text(f"{o.kind}\n{o.message}\n{o.stderr}")
        stats["wall_s"] = time.perf_counter() - start
    finally:
        if own:
            box.close()
        shutil.rmtree(work, ignore_errors=True)
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=1.0, help="minutes per reader")
    ap.add_argument("--cases", type=int, default=None, help="stop after this many cases per reader")
    ap.add_argument("--reader", choices=READERS, action="append", help="fuzz only this reader (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cap-mb", type=int, default=2048, help="address-space cap per case (RLIMIT_AS)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--findings", type=Path, default=None, help="folder for the inputs of findings")
    ap.add_argument("--progress", type=float, default=300.0, help="seconds between progress lines")
    args = ap.parse_args(argv)
    from modgraph.io.limits import ENV_READ_TIMEOUT, Limits
    product = Limits.from_env().read_timeout(2**20)
    if args.timeout <= product + 1:
        ap.error(f"--timeout {args.timeout:g} must exceed load's own time limit for a small file, {product:g} s "
                 f"({ENV_READ_TIMEOUT}) by more than 1 s: else libhdf5 hangs count as hangs, not refusals")
    # the product's own ceilings must fit in the cap, or a file that really holds more than the cap (a
    # mutant can write gigabytes) reads as a memory finding instead of the ceiling's refusal
    import os
    from modgraph.io.limits import ENV_MAX_ARRAY_BYTES, ENV_MAX_LOAD_BYTES
    os.environ.setdefault(ENV_MAX_ARRAY_BYTES, str(args.cap_mb * 2**20 // 4))
    os.environ.setdefault(ENV_MAX_LOAD_BYTES, str(args.cap_mb * 2**20 // 2))
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    return fuzz_child.supervised(lambda: _campaign(args, work), work)


def _campaign(args, work: Path) -> int:
    """The campaign of ``main`` (run in the supervised child): every reader in turn, then the table."""
    rows = []
    with Sandbox(cap_bytes=args.cap_mb * 2**20, timeout_s=args.timeout) as box:
        for reader in args.reader or READERS:
            s = fuzz(reader, seconds=None if args.cases else args.minutes * 60, cases=args.cases, seed=args.seed,
                     timeout_s=args.timeout, findings=args.findings, sandbox=box, tmp_root=work,
                     progress_s=args.progress)
            rows.append(s)
            for f in s["findings"][:5]:
                print(f"  finding [{reader}] {f['signature']}", flush=True)
            for why, n in sorted(s["lost"].items()):
                print(f"  mutations lost [{reader}] {why}: {n}", flush=True)
    print(f"{'reader':15} {'executions':>10} {'exec/s':>7} {'distinct':>8} {'ok':>6} {'refused':>8} "
          f"{'findings':>8} {'max s':>6} {'mut. lost':>9}")
    for s in rows:
        k = s["kinds"]
        print(f"{s['reader']:15} {s['executions']:>10} {s['executions'] / max(s['wall_s'], 1e-9):>7.1f} "
              f"{len(s['signatures']):>8} {k.get('ok', 0):>6} {k.get('refused', 0):>8} {len(s['findings']):>8} "
              f"{s['max_seconds']:>6.2f} {sum(s['lost'].values()):>9}", flush=True)
    return 1 if any(s["findings"] for s in rows) else 0

if __name__ == "__main__":
    sys.exit(main())
