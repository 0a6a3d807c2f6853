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

__all__ = ["random_network", "sculpted_networks", "labels_from_modules"]


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


def _masked(masks, *, seed=0, output="sigmoid") -> LayeredNetwork:
    rng = np.random.default_rng(seed)
    layers = []
    for i, m in enumerate(masks):
        m = np.asarray(m, dtype=bool)
        w = np.where(m, rng.uniform(0.5, 1.5, m.shape) * rng.choice([-1.0, 1.0], m.shape), 0.0)
        layers.append(Layer.from_dense(w, mask=m, activation=output if i == len(masks) - 1 else "relu"))
    return LayeredNetwork(layers)


def _connect(shape, pairs):
    m = np.zeros(shape, dtype=bool)
    for out, ins in pairs:
        m[out, ins] = True
    return m


def sculpted_networks() -> dict:
    """The hand-built pruned networks of Neural Sculpting spec §9.2, by name.

    Each value is ``(network, expected condensed widths, expected edges, expected modules)``;
    modules are sets of ``(layer, index)`` units of the original network.

    >>> net, widths, n_edges, modules = sculpted_networks()["[6,3,3,3]"]
    >>> net.widths, widths, n_edges, len(modules)
    ((6, 3, 3, 3), [6, 3, 3, 3], 15, 6)
    """
    nets = {}
    # [4,2,4] ideal inside [4,24,24,4] with dead parts: h1_2 dead end, h2_2 without inputs,
    # dead chain h1_3 -> h2_3 (h2_3 has no outputs)
    m1 = _connect((24, 4), [(0, [0, 1]), (1, [2, 3]), (2, [0]), (3, [3])])
    m2 = _connect((24, 24), [(0, [0]), (1, [1]), (3, [3])])
    m3 = _connect((4, 24), [([0, 1], 0), ([2, 3], 1), (0, 2)])
    nets["[4,2,4]"] = (_masked([m1, m2, m3]), [4, 2, 2, 4], 10,
                       [{(0, 0), (0, 1), (1, 0), (2, 0), (3, 0), (3, 1)},
                        {(0, 2), (0, 3), (1, 1), (2, 1), (3, 2), (3, 3)}])
    m1 = _connect((3, 6), [(g, [2 * g, 2 * g + 1]) for g in range(3)])
    m2 = np.eye(3, dtype=bool)
    m3 = _connect((3, 3), [(0, [0, 1]), (1, [0, 2]), (2, [1, 2])])
    nets["[6,3,3,3]"] = (_masked([m1, m2, m3]), [6, 3, 3, 3], 15,
                         [{(0, 2 * g), (0, 2 * g + 1), (1, g), (2, g)} for g in range(3)]
                         + [{(3, k)} for k in range(3)])
    m3 = np.zeros((16, 2), dtype=bool)
    m3[0::2, 0] = True
    m3[1::2, 1] = True
    nets["[4,1,2,16]"] = (_masked([np.ones((3, 4)), np.ones((2, 3)), m3]), [4, 3, 2, 16], 34,
                          [{(0, i) for i in range(4)} | {(1, j) for j in range(3)},
                           {(2, 0)} | {(3, k) for k in range(0, 16, 2)},
                           {(2, 1)} | {(3, k) for k in range(1, 16, 2)}])
    nets["[4,1,4]"] = (_masked([np.ones((3, 4)), np.ones((2, 3)), np.ones((4, 2))]), [4, 3, 2, 4], 26,
                       [{(0, i) for i in range(4)} | {(1, j) for j in range(3)} | {(2, j) for j in range(2)}
                        | {(3, k) for k in range(4)}])
    nets["dense [4,8,8,4]"] = (_masked([np.ones((8, 4)), np.ones((8, 8)), np.ones((4, 8))]), [4, 8, 8, 4], 128,
                               [{(0, i) for i in range(4)} | {(l, j) for l in (1, 2) for j in range(8)}
                                | {(3, k) for k in range(4)}])
    m1 = _connect((2, 4), [(0, [0, 1]), (1, [2, 3])])
    m2 = _connect((4, 2), [([0, 1], 0), ([2, 3], 1)])
    nets["[4,2,4] 1 HL"] = (_masked([m1, m2]), [4, 2, 4], 8,
                            [{(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)}, {(0, 2), (0, 3), (1, 1), (2, 2), (2, 3)}])
    return nets


def labels_from_modules(graph, modules) -> np.ndarray:
    """Labels over ``graph``'s units from modules given as sets of ``(layer, index)``."""
    where = {(int(l), int(i)): u for u, (l, i) in enumerate(zip(graph.layer, graph.index))}
    labels = np.full(graph.n_units, -1, dtype=np.int64)
    for m, units in enumerate(modules):
        for key in units:
            labels[where[key]] = m
    return labels
