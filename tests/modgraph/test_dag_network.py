"""DagNetwork: the chain special case is exactly the LayeredNetwork; the builder refuses bad shapes clearly."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.dag_edges import unit_edges
from modgraph.errors import FormatError
from modgraph.graph import build_unit_graph
from modgraph.network import Layer, LayeredNetwork


def _chain(seed=0):
    rng = np.random.default_rng(seed)
    w1 = sp.random(5, 4, density=0.6, random_state=seed, format="csr")
    w1.data[0] = 0.0                                                   # a kept weight that is 0.0
    return LayeredNetwork([Layer(w1, rng.normal(size=5), activation="tanh"),
                           Layer.from_dense(rng.normal(size=(3, 5)), activation="leaky_relu", alpha=0.2),
                           Layer.from_dense(rng.normal(size=(2, 3)), activation="identity")],
                          metadata={"task": "x"}, source_format="modgraph-hdf5")


def test_from_layered_is_the_chain_itself():
    net = _chain()
    dag = DagNetwork.from_layered(net)
    assert dag.is_chain and dag.to_layered() is net
    x = np.random.default_rng(1).normal(size=(7, 4))
    assert np.array_equal(dag.forward(x), net.forward(x))
    assert [g.name for g in dag.groups] == ["input", "layer1", "layer2", "layer3"]
    assert [g.depth for g in dag.groups] == [0, 1, 2, 3] and dag.groups[-1].kind == "output"
    assert dag.metadata == {"task": "x"} and dag.n_units == sum(net.widths)


@pytest.mark.parametrize("edge_norm", ["l1", "l2", "filan"])
def test_chain_edges_are_the_unit_graph_edges(edge_norm):
    net = _chain(2)
    g = build_unit_graph(net)
    e = unit_edges(DagNetwork.from_layered(net), edge_norm=edge_norm)
    assert np.array_equal(e.src, g.src) and np.array_equal(e.dst, g.dst)
    assert np.array_equal(e.weight, g.weight) and set(e.type_names()) == {"dense"}
    assert e.n_edges == net.summary()["n_edges"]                    # the stored 0.0 is an edge


def test_chain_generic_forward_equals_layered():
    """The generic step-by-step forward of a from_layered DAG equals the chain's."""
    net = _chain(3)
    dag = DagNetwork.from_layered(net)
    generic = DagNetwork(dag.groups, dag.steps, dag.tensor_maps, dag.outputs)
    x = np.random.default_rng(4).normal(size=(6, 4))
    np.testing.assert_allclose(generic.forward(x), net.forward(x), rtol=1e-12, atol=1e-12)
    assert generic.is_chain
    back = generic.to_layered()
    np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=1e-12, atol=1e-12)


def test_builder_chain_to_layered_and_refusal():
    rng = np.random.default_rng(5)
    b = DagBuilder()
    x = b.input("in", channels=3)
    h = b.dense("fc2", b.activation(b.dense("fc1", x, rng.normal(size=(4, 3)), np.ones(4)), "relu"),
                rng.normal(size=(2, 4)))
    net = b.build(outputs=[h])
    assert net.is_chain
    layered = net.to_layered()
    assert layered.widths == (3, 4, 2) and [l.activation for l in layered.layers] == ["relu", "identity"]
    xin = rng.normal(size=(5, 3))
    np.testing.assert_allclose(layered.forward(xin), net.forward(xin), rtol=1e-12)
    b = DagBuilder()
    x = b.input("in", channels=2, spatial=(3, 3))
    conv = b.build(outputs=[b.conv("c", x, np.ones((1, 2, 3, 3)))])
    assert not conv.is_chain
    with pytest.raises(FormatError, match="expected a chain of dense layers, found a DAG with conv"):
        conv.to_layered()


def _spatial_input(channels=4):
    b = DagBuilder(source="model.onnx")
    return b, b.input("x", channels=channels, spatial=(6, 6))


def test_builder_errors_name_the_op_expected_and_found():
    b, x = _spatial_input()
    c3 = b.conv("c3", x, np.ones((3, 4, 1, 1)))
    with pytest.raises(FormatError, match=r"model.onnx: add 'a': expected inputs of equal shape .* "
                                          r"found input 1 with 3 channels"):
        b.add("a", [x, c3])
    with pytest.raises(FormatError, match=r"conv 'g': expected group dividing the input channels \(4\).*"
                                          r"found group=3"):
        b.conv("g", x, np.ones((3, 1, 3, 3)), group=3)
    with pytest.raises(FormatError, match=r"conv 'w' weight: expected 2 input channels per group"):
        b.conv("w", x, np.ones((4, 4, 3, 3)), group=2)
    with pytest.raises(FormatError, match=r"dense 'fc' weight: expected 144 input features, found 10"):
        b.dense("fc", b.flatten(x), np.ones((2, 10)))
    with pytest.raises(FormatError, match=r"dense 'fc': expected a 2-D input"):
        b.dense("fc", x, np.ones((2, 4)))
    with pytest.raises(FormatError, match=r"node 'c3': expected a unique, non-empty group name"):
        b.conv("c3", x, np.ones((3, 4, 1, 1)))
    with pytest.raises(FormatError, match=r"conv 'big': expected a positive output size"):
        b.conv("big", x, np.ones((1, 4, 9, 9)))
    with pytest.raises(FormatError, match=r"expected finite values, found 4 NaN/Inf"):
        b.conv("nan", x, np.array([[[[np.nan]]]] * 1).repeat(4, axis=1))
    with pytest.raises(FormatError, match=r"activation 'gelu2': expected one of"):
        b.activation(x, "gelu2")
    other, y = _spatial_input()
    with pytest.raises(FormatError, match="a Tensor made by this DagBuilder"):
        b.conv("z", y, np.ones((1, 4, 1, 1)))


def test_built_arrays_are_read_only_and_not_the_callers():
    b, x = _spatial_input(1)
    w = np.ones((2, 1, 1, 1))
    net = b.build(outputs=[b.conv("c", x, w)])
    w[0] = 5.0                                                        # the builder copied it
    g = net.group("c")
    assert g.weight.max() == 1.0 and not g.weight.flags.writeable and not g.gain.flags.writeable
    with pytest.raises(KeyError, match="no unit group 'nope'; groups: x, c"):
        net.group("nope")
    with pytest.raises(ValueError, match=r"expected input of shape \(n, 1, 6, 6\)"):
        net.forward(np.ones((1, 6, 6)))


def test_builder_chain_edges_equal_the_unit_graph_of_its_layered_network():
    rng = np.random.default_rng(6)
    w1, w2 = rng.normal(size=(5, 4)) * (rng.random((5, 4)) < 0.5), rng.normal(size=(2, 5))
    b = DagBuilder()
    h = b.dense("fc2", b.activation(b.dense("fc1", b.input("in", channels=4), w1), "relu"), w2)
    net = b.build(outputs=[h])
    g, e = build_unit_graph(net.to_layered()), unit_edges(net)
    assert np.array_equal(e.src, g.src) and np.array_equal(e.dst, g.dst) and np.array_equal(e.weight, g.weight)


def test_builder_unit_budget_refuses_declared_channels_before_allocating():
    """Channel counts a file declares (input, channel pads, concats that repeat a tensor) are bounded
    by ``max_units``: the refusal comes before the unit map is allocated, and names the op."""
    with pytest.raises(FormatError, match=r"input 'x': expected at most 100 channel entries in all \(the budget for what the file stores\), found "
                                          r"2147483647 more declared here, 0 so far"):
        DagBuilder(source="f.onnx", max_units=100).input("x", channels=2**31 - 1)
    b = DagBuilder(max_units=100)
    x = b.input("x", channels=10)
    x = b.concat([x, x])                                   # 10 + 20 entries
    x = b.concat([x, x])                                   # + 40 = 70
    with pytest.raises(FormatError, match=r"concat: expected at most 100 .* found 80 more declared here, 70 so far"):
        b.concat([x, x])
    with pytest.raises(FormatError, match=r"pad_channels: .* found 60 more declared here, 70 so far"):
        b.pad_channels(x, 10, 10)
    net = DagBuilder(max_units=100)
    t = net.input("x", channels=4)
    net.build(outputs=[net.dense("fc", net.concat([t, t]), np.ones((2, 8)))])   # within budget: builds
