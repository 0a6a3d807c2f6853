"""A :class:`~trainers.cnn.MaskedCNN` as modgraph's network value (:class:`~modgraph.dag.DagNetwork`).

:func:`to_dag` replays the model's forward pass through :class:`~modgraph.dag_builder.DagBuilder`
with the masks multiplied in: groups ``conv1``…, ``dense1``…, ``output`` (the names of the
ONNX export), ReLU, 2×2 max-pools, eval-mode BatchNorm (running statistics; its |γ/√(var+ε)|
becomes a unit gain), a C, H, W flatten, softmax output. Dropout is an identity at inference and
is left out. :func:`export_cnn` writes a model both ways: ONNX (:func:`trainers.cnn.export_cnn_onnx`)
and modgraph HDF5 (``modgraph.save``: format version 2.0, a DAG). Weights stay float32, as trained.

Examples
--------
>>> from trainers.cnn import small_cnn
>>> dag = to_dag(small_cnn(seed=0, channels=(2, 3, 4), dense=(5,)))
>>> [(g.name, g.n_units) for g in dag.groups]
[('input', 1), ('conv1', 2), ('conv2', 3), ('conv3', 4), ('dense1', 5), ('output', 10)]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.io import save
from trainers.cnn import MaskedCNN, export_cnn_onnx

__all__ = ["to_dag", "export_cnn"]


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _bn(b: DagBuilder, t, bn, name: str):
    return b.batch_norm(t, _np(bn.weight), _np(bn.bias), _np(bn.running_mean), _np(bn.running_var),
                        eps=float(bn.eps), name=name)


def to_dag(model: MaskedCNN, *, metadata: dict | None = None) -> DagNetwork:
    """The model (masks applied, inference mode) as a DagNetwork with softmax outputs."""
    b = DagBuilder(source="trainers.cnn.MaskedCNN")
    c, h, w = model.input_shape
    t = b.input("input", channels=c, spatial=(h, w))
    masks = model.masks
    for i, (conv, blk) in enumerate(zip(model.convs, model.blocks), start=1):
        t = b.conv(f"conv{i}", t, _np(conv.weight * masks[i - 1]), _np(conv.bias), pads=(1, 1, 1, 1))
        t = b.activation(t, "relu")
        if blk.pool:
            t = b.max_pool(t, (2, 2))
        if blk.batch_norm:
            t = _bn(b, t, model.conv_bns[str(i - 1)], f"bn{i}")
    t = b.flatten(t, order="CHW")
    at = len(model.convs)
    for i, (lin, blk) in enumerate(zip(model.linears, model.dense_blocks), start=1):
        t = b.activation(b.dense(f"dense{i}", t, _np(lin.weight * masks[at + i - 1]), _np(lin.bias)), "relu")
        if blk.batch_norm:
            t = _bn(b, t, model.dense_bns[str(i - 1)], f"dense{i}_bn")
    last = model.linears[-1]
    t = b.activation(b.dense("output", t, _np(last.weight * masks[-1]), _np(last.bias)), "softmax")
    return b.build(outputs=[t], metadata=metadata or {}, source_format="torch")


def export_cnn(model: MaskedCNN, path, *, metadata: dict | None = None) -> list[str]:
    """Write ``path`` (``.onnx``) and the same network as modgraph HDF5 beside it (``.h5``); both atomic."""
    path = Path(path)
    export_cnn_onnx(model, path, metadata=metadata)
    h5 = path.with_suffix(".h5")
    save(to_dag(model, metadata=metadata), h5)
    return [str(path), str(h5)]
