"""Small random networks for tests, examples and benchmarks (made in memory, nothing shipped).

Examples
--------
>>> net = random_network([4, 6, 2], density=0.5, seed=0)
>>> net.widths
(4, 6, 2)
"""
from __future__ import annotations

import numpy as np

from modgraph.network import Layer, LayeredNetwork

__all__ = ["random_network"]


def random_network(widths, *, density=0.5, dtype=np.float64, seed=0, activations=None,
                   empty_layers=(), names=False) -> LayeredNetwork:
    """A random sparse network; layers listed in ``empty_layers`` are fully pruned."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        mask = rng.random((n_out, n_in)) < density
        if i in empty_layers:
            mask[:] = False
        w = (rng.normal(size=(n_out, n_in)) * mask).astype(dtype)
        if mask.any():
            w[tuple(np.argwhere(mask)[0])] = 0.0          # a surviving weight that is exactly 0
        act = activations[i] if activations else ("sigmoid" if i == len(widths) - 2 else "relu")
        unit_names = [f"L{i + 1}u{j}" for j in range(n_out)] if names else None
        layers.append(Layer.from_dense(w, rng.normal(size=n_out).astype(dtype), activation=act,
                                       mask=mask, unit_names=unit_names))
    return LayeredNetwork(layers, input_names=[f"x{j}" for j in range(widths[0])] if names else None,
                          metadata={"seed": seed, "nested": {"a": [1, 2.5, None], "b": "text"}})
