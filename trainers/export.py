"""MaskedMLP → :class:`~modgraph.network.LayeredNetwork` → ``network.h5`` + ``network.onnx`` + ``config.json``.

The mask is the edge set: every surviving weight is stored, also one that is exactly 0.
Bias masks go into the metadata (``bias_masks``), beside the task spec, the ground truth
(plain JSON, see ``docs/trainers.md``), the configuration, the pruning history, the grid
and the accuracy. Every file is written atomically.

Examples
--------
>>> from trainers.model import MaskedMLP
>>> to_network(MaskedMLP([2, 3, 1], seed=0)).widths
(2, 3, 1)
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch

from modgraph.io import atomic_path, save
from modgraph.io.onnx_export import export_onnx
from modgraph.network import Layer, LayeredNetwork
from trainers.model import MaskedMLP

__all__ = ["to_network", "export_run", "run_metadata"]


def to_network(net: MaskedMLP, *, index: int = 0, metadata=None, input_names=None,
               output_names=None) -> LayeredNetwork:
    """Network ``index`` of the stack as a LayeredNetwork (ReLU hidden, sigmoid outputs)."""
    theta = (net.theta * net.mask).detach()
    layers = []
    last = len(net.slices) - 1
    for layer in range(len(net.slices)):
        w = net.weight(layer, theta)[index].numpy().astype(np.float32)
        m = net.weight(layer, net.mask)[index].numpy() != 0
        b = net.bias(layer, theta)[index].numpy().astype(np.float32)
        layers.append(Layer.from_dense(w, b, mask=m, activation="sigmoid" if layer == last else "relu",
                                       unit_names=output_names if layer == last else None))
    return LayeredNetwork(layers, input_names=input_names, metadata=metadata)


def run_metadata(result, task, config: dict) -> dict:
    """The metadata written with a sculpted network (all plain JSON)."""
    net = result.net
    return {"producer": "trainers (modgraph-train)", "method": "neural-sculpting (arXiv 2305.18402)",
            "task": task.spec, "ground_truth": task.ground_truth(), "config": config,
            "accuracy": result.accuracy, "loss": result.loss, "meets_gate": result.meets_gate,
            "selected": {"pu": result.pu, "pe": result.pe, "edges": result.edges,
                         "sparsity": result.sparsity, "epochs": result.epochs},
            "pruning_history": result.history, "grid": result.grid,
            "bias_masks": [net.bias(layer, net.mask)[0].to(torch.int64).tolist()
                           for layer in range(len(net.slices))],
            "timings": result.timings,
            "versions": {"torch": torch.__version__, "python": platform.python_version()}}


def export_run(result, task, out_dir, *, config: dict) -> dict:
    """Write ``network.h5``, ``network.onnx`` and ``config.json`` into ``out_dir``.

    Returns the paths written, by kind.
    """
    out = Path(out_dir)
    gt = task.ground_truth()
    net = to_network(result.net, metadata=run_metadata(result, task, config), input_names=gt["inputs"],
                     output_names=gt["outputs"])
    paths = {"hdf5": out / "network.h5", "onnx": out / "network.onnx", "config": out / "config.json"}
    save(net, paths["hdf5"])
    export_onnx(net, paths["onnx"])
    with atomic_path(paths["config"]) as tmp:
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return paths
