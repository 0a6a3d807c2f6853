"""The embedded default job behind ``make demo``.

For now: build a small example network with two planted sub-networks, write it to
modgraph HDF5, read it back and print its summary and its condensed unit graph.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from modgraph.cli import _format_summary
from modgraph.graph import build_unit_graph, condense
from modgraph.io import load, save
from modgraph.network import Layer, LayeredNetwork

__all__ = ["example_network", "run_demo"]


def example_network(*, seed: int = 0) -> LayeredNetwork:
    """A 4-8-8-4 network made of two disjoint sub-networks (x1,x2 → y1,y2 and x3,x4 → y3,y4)
    plus one dead hidden unit per hidden layer."""
    rng = np.random.default_rng(seed)
    widths = [4, 8, 8, 4]
    layers = []
    for l, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        mask = np.zeros((n_out, n_in), bool)
        half_in, half_out = n_in // 2, n_out // 2
        mask[:half_out, :half_in] = True
        mask[half_out:, half_in:] = True
        if l < 2:
            mask[n_out - 1, :] = False          # a unit with no inputs: dead
        w = rng.normal(size=(n_out, n_in)) * mask
        act = "sigmoid" if l == len(widths) - 2 else "relu"
        layers.append(Layer.from_dense(w, rng.normal(size=n_out) * 0.1, activation=act, mask=mask))
    return LayeredNetwork(layers, input_names=[f"x{i + 1}" for i in range(4)],
                          metadata={"example": "two planted sub-networks", "seed": seed})


def run_demo(out: Path) -> int:
    out = Path(out)
    net = example_network(seed=0)
    path = out / "example.h5"
    save(net, path)
    back = load(path)
    summary = back.summary()
    summary["file"] = str(path)
    print(_format_summary(summary))
    g = condense(build_unit_graph(back))
    print(f"  condensed unit graph: {g.n_units} units, {g.n_edges} edges "
          f"(removed {sum(back.widths) - g.n_units} dead units)")
    return 0
