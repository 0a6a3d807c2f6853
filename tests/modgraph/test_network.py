import numpy as np
import pytest
import scipy.sparse as sp

from modgraph.errors import FormatError
from modgraph.network import ACTIVATIONS, Layer, LayeredNetwork
from modgraph.testing import random_network


def _dense_forward(weights, biases, activations, x, alpha=0.01):
    """Independent dense computation (no shared code with LayeredNetwork)."""
    h = x
    for w, b, act in zip(weights, biases, activations):
        z = h @ w.T + b
        if act == "relu":
            h = np.where(z > 0, z, 0.0)
        elif act == "sigmoid":
            h = 1.0 / (1.0 + np.exp(-z))
        elif act == "tanh":
            h = np.tanh(z)
        elif act == "identity":
            h = z
        elif act == "leaky_relu":
            h = np.where(z > 0, z, alpha * z)
        elif act == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            h = e / e.sum(axis=1, keepdims=True)
        elif act == "log_softmax":
            h = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        elif act == "elu":
            h = np.where(z > 0, z, alpha * (np.exp(z) - 1))
    return h


@pytest.mark.parametrize("acts", [["relu", "relu", "sigmoid"], ["tanh", "leaky_relu", "softmax"],
                                  ["identity", "elu", "log_softmax"], ["sigmoid", "tanh", "identity"]])
def test_forward_matches_dense_numpy(acts):
    net = random_network([7, 9, 6, 4], density=0.6, activations=acts, seed=3)
    x = np.random.default_rng(1).normal(size=(20, 7))
    expected = _dense_forward([l.dense() for l in net.layers], [l.bias for l in net.layers], acts, x)
    np.testing.assert_allclose(net.forward(x), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(net.forward(x[0]), expected[0], atol=1e-6, rtol=0)


def test_forward_float32_network_matches():
    net = random_network([5, 8, 3], dtype=np.float32, seed=2)
    x = np.random.default_rng(0).normal(size=(10, 5))
    expected = _dense_forward([l.dense().astype(np.float64) for l in net.layers],
                              [l.bias.astype(np.float64) for l in net.layers], ["relu", "sigmoid"], x)
    np.testing.assert_allclose(net.forward(x), expected, atol=1e-6)


def test_forward_rejects_wrong_width():
    net = random_network([5, 3])
    with pytest.raises(ValueError, match=r"expected input of shape \(n, 5\), got \(2, 4\)"):
        net.forward(np.zeros((2, 4)))


def test_arrays_are_read_only():
    layer = random_network([4, 3]).layers[0]
    for arr in (layer.weight.data, layer.weight.indices, layer.bias):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1


def test_explicit_zero_weight_is_a_surviving_edge():
    mask = np.array([[True, False], [True, True]])
    layer = Layer.from_dense(np.array([[0.0, 5.0], [1.0, 2.0]]), mask=mask)
    assert layer.n_edges == 3
    np.testing.assert_array_equal(layer.mask, mask)
    np.testing.assert_array_equal(layer.dense(), [[0.0, 0.0], [1.0, 2.0]])


def test_summary_counts():
    net = LayeredNetwork([Layer.from_dense(np.array([[1.0, 0.0], [0.0, 0.0]])),
                          Layer(sp.csr_matrix((1, 2)), activation="identity")])
    s = net.summary()
    assert s["widths"] == [2, 2, 1] and s["n_edges"] == 1 and s["n_weights"] == 6
    assert s["layers"][1]["n_edges"] == 0
    assert s["sparsity"] == pytest.approx(5 / 6)


@pytest.mark.parametrize("layers, match", [
    ([Layer.from_dense(np.ones((3, 2))), Layer.from_dense(np.ones((1, 4)))],
     r"<network>: layer 1 weight: expected 3 inputs \(the width of layer 0\), found 4"),
    ([Layer.from_dense(np.array([[np.nan, 1.0]]))], r"layer 0 weight: expected finite values, found 1 NaN/Inf"),
    ([Layer.from_dense(np.ones((1, 2)), np.array([np.inf]))], r"layer 0 bias: expected finite values"),
    ([Layer.from_dense(np.ones((1, 2)), activation="swish")], r"layer 0 activation: expected one of .*relu.*'swish'"),
    ([Layer.from_dense(np.ones((2, 2)), np.zeros(3))], r"layer 0 bias: expected shape \(2,\), found shape \(3,\)"),
    ([], r"layers: expected at least one layer, found none"),
])
def test_validation_errors(layers, match):
    with pytest.raises(FormatError, match=match):
        LayeredNetwork(layers)


def test_metadata_must_be_json():
    with pytest.raises(FormatError, match="metadata: expected JSON-serialisable values"):
        LayeredNetwork([Layer.from_dense(np.ones((1, 1)))], metadata={"x": object()})


def test_all_activations_known_to_forward():
    assert {"relu", "sigmoid", "tanh", "identity", "softmax", "leaky_relu"} <= set(ACTIVATIONS)
