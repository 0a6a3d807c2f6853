"""The unit graph of a DagNetwork: views split / coupled / filan, edge norms, cleaning, nulls, methods."""
import numpy as np
import pytest

from modgraph.dag_builder import DagBuilder
from modgraph.dag_edges import EDGE_TYPES, unit_edges
from modgraph.detect import detect
from modgraph.errors import ModgraphError
from modgraph.graph import build_unit_graph, condense, drop_isolated
from modgraph.hierarchy import module_dag, reachability
from modgraph.metrics import ari
from modgraph.nulls import shuffle_graph, significance


def small_cnn(seed=0, *, width=64):
    """Filan et al.'s small CNN: 3 conv x 64, then a dense layer (design §5)."""
    rng = np.random.default_rng(seed)
    b = DagBuilder()
    x = b.input("image", channels=1, spatial=(8, 8))
    k = {}
    t = x
    for i, c_in in enumerate((1, width, width)):
        k[i] = rng.uniform(-1, 1, (width, c_in, 3, 3))
        t = b.conv(f"conv{i + 1}", t, k[i], rng.standard_normal(width), pads=(1, 1, 1, 1))
        t = b.activation(t, "relu")
        if i == 1:
            t = b.max_pool(t, (2, 2))
    t = b.dense("fc", b.flatten(b.global_avg_pool(t)), rng.standard_normal((10, width)))
    return b.build(outputs=[t]), k


def cnn_with_bn(seed=0, width=8):
    rng = np.random.default_rng(seed)
    b = DagBuilder()
    x = b.input("image", channels=2, spatial=(6, 6))
    k1, k2, k3 = (rng.uniform(-1, 1, (width, c, 3, 3)) for c in (2, width, width))
    gamma, var = rng.uniform(0.5, 2.0, width) * rng.choice([-1, 1], width), rng.uniform(0.5, 2.0, width)
    t = b.activation(b.conv("conv1", x, k1, pads=(1, 1, 1, 1)), "relu")
    t = b.batch_norm(b.conv("conv2", t, k2, pads=(1, 1, 1, 1)), gamma, np.zeros(width), np.zeros(width), var, eps=1e-5)
    t = b.conv("conv3", b.max_pool(b.activation(t, "relu"), (2, 2)), k3, pads=(1, 1, 1, 1))
    t = b.dense("fc", b.flatten(b.global_avg_pool(t)), rng.standard_normal((3, width)))
    return b.build(outputs=[t]), (k1, k2, k3), np.abs(gamma / np.sqrt(var + 1e-5))


def residual_modules(seed=0, n=6):
    """Two disjoint channel sets (modules), weights only within each, across two residual Adds."""
    rng = np.random.default_rng(seed)

    def blockdiag(o, i, ks=3):
        w = np.zeros((2 * o, 2 * i, ks, ks))
        w[:o, :i] = rng.uniform(0.2, 1.0, (o, i, ks, ks)) * rng.choice([-1, 1], (o, i, ks, ks))
        w[o:, i:] = rng.uniform(0.2, 1.0, (o, i, ks, ks)) * rng.choice([-1, 1], (o, i, ks, ks))
        return w

    b = DagBuilder()
    x = b.input("x", channels=4, spatial=(5, 5))
    a = b.activation(b.conv("a", x, blockdiag(n, 2), pads=(1, 1, 1, 1)), "relu")
    c = b.activation(b.conv("b", a, blockdiag(n, n), pads=(1, 1, 1, 1)), "relu")
    s = b.add("add1", [a, c])
    d = b.activation(b.conv("c", s, blockdiag(n, n), pads=(1, 1, 1, 1)), "relu")
    s2 = b.add("add2", [s, d])
    w = np.zeros((4, 2 * n))
    w[:2, :n], w[2:, n:] = rng.uniform(0.2, 1, (2, n)), rng.uniform(0.2, 1, (2, n))
    y = b.dense("out", b.flatten(b.global_avg_pool(s2)), w)
    net = b.build(outputs=[y])
    truth = np.concatenate([np.repeat([0, 1], m) for m in (2, n, n, n, n, n, 2)])
    return net, truth


def test_split_view_is_every_unit_and_typed_edge_of_the_dag():
    net, _ = residual_modules()
    for norm in ("l1", "l2", "filan", "nnz"):
        g, e = build_unit_graph(net, edge_norm=norm), unit_edges(net, edge_norm=norm)
        assert g.view == "split" and g.is_dag and g.n_units == net.n_units and g.edge_norm == norm
        assert np.array_equal(g.src, e.src) and np.array_equal(g.dst, e.dst) and np.array_equal(g.value, e.weight)
        assert np.array_equal(g.edge_type, e.type)
    assert g.unit_names() == net.unit_names()
    depth = {grp.name: grp.depth for grp in net.groups}
    assert [int(g.layer[u]) for u in net.unit_offsets[:-1]] == [depth[grp.name] for grp in net.groups]
    assert np.all(g.layer[g.dst] > g.layer[g.src]) and not g.is_consecutive      # the Adds' edges skip layers
    assert g.input_units().tolist() == [0, 1, 2, 3] and g.output_units().size == 4


def test_split_view_of_a_plain_cnn_is_a_chain_of_layers():
    net, _ = small_cnn(width=4)
    g = build_unit_graph(net)
    assert g.is_consecutive and g.widths == (1, 4, 4, 4, 10)


def test_condense_and_drop_isolated_on_a_dag():
    net, _ = residual_modules()
    g = build_unit_graph(net)
    assert condense(g).n_units == g.n_units
    dead = int(net.unit_offsets[1])                    # a's channel 0: remove its incoming edges
    cut = g.subgraph(np.ones(g.n_units, bool)).with_edges(g.src[g.dst != dead], g.dst[g.dst != dead],
                                                          g.value[g.dst != dead], g.edge_type[g.dst != dead])
    c = condense(cut)
    assert c.n_units == g.n_units - 1 and dead not in c.original_id.tolist()
    d = drop_isolated(cut)
    assert d.n_units == g.n_units                     # it still has outgoing edges
    assert c.unit_names() == [n for i, n in enumerate(net.unit_names()) if i != dead]
    labels = np.arange(c.n_units)
    full = c.to_full_labels(labels)
    assert full[dead] == -1 and full.size == g.n_units


def test_coupled_view_merges_residual_streams():
    net, _ = residual_modules(n=6)
    g = build_unit_graph(net, view="coupled")
    # x (4), one stream of 12 channels (a, b, c, add1, add2 all coupled), out (4)
    assert g.view == "coupled" and not g.layered and g.n_units == 4 + 12 + 4
    assert g.unit_names()[4:6] == ["a:0", "a:1"]
    assert not (g.edge_type == EDGE_TYPES.index("identity")).any() and np.all(g.src != g.dst)
    for method in ("sculpting", "subfunctions", "sbm"):
        with pytest.raises(ModgraphError, match=f"{method}.*coupled view is not layered"):
            detect(g, method=method)
    p = detect(g, method="modularity", seed=0)
    assert p.n_modules == 2
    dag = module_dag(condense(g), p)
    assert sorted(m.n_units for m in dag.modules) == [10, 10]


def test_coupled_view_of_a_dag_without_adds_is_the_split_view():
    net, _ = small_cnn(width=4)
    a, b = build_unit_graph(net), build_unit_graph(net, view="coupled")
    assert np.array_equal(a.src, b.src) and b.layered


def test_filan_view_of_the_small_cnn_has_192_vertices_in_two_64x64_blocks():
    net, k = small_cnn()
    g = build_unit_graph(net, view="filan")
    assert (g.n_units, g.n_edges, g.edge_norm) == (192, 2 * 64 * 64, "filan")
    assert g.group_names == ("conv1", "conv2", "conv3") and g.widths == (64, 64, 64)
    # independent oracle: numpy's matrix 1-norm of |K[o, i]| for every consumer o, producer i
    expect = {}
    for blk, kern in ((0, k[1]), (1, k[2])):
        for o in range(64):
            for i in range(64):
                expect[(blk * 64 + i, (blk + 1) * 64 + o)] = np.linalg.norm(np.abs(kern[o, i]), ord=1)
    got = {(int(s), int(d)): float(v) for s, d, v in zip(g.src, g.dst, g.value)}
    assert got.keys() == expect.keys()
    assert max(abs(got[key] - expect[key]) for key in expect) < 1e-12
    l1 = build_unit_graph(net, view="filan", edge_norm="l1")
    assert np.allclose(np.sort(l1.value), np.sort([np.abs(kern[o, i]).sum() for kern in (k[1], k[2])
                                                   for o in range(64) for i in range(64)]))


def test_filan_view_multiplies_bn_into_the_producers_columns():
    net, (k1, k2, k3), s = cnn_with_bn()
    g = build_unit_graph(net, view="filan")
    got = {(int(a), int(b)): float(v) for a, b, v in zip(g.src, g.dst, g.value)}
    for o in range(8):
        for i in range(8):
            assert got[(i, 8 + o)] == pytest.approx(np.linalg.norm(np.abs(k2[o, i]), ord=1))
            assert got[(8 + i, 16 + o)] == pytest.approx(np.linalg.norm(np.abs(k3[o, i]), ord=1) * s[i])


def test_filan_view_walks_through_adds_and_concat():
    rng = np.random.default_rng(0)
    b = DagBuilder()
    x = b.input("x", channels=2, spatial=(4, 4))
    p = b.conv("p", x, rng.uniform(-1, 1, (3, 2, 1, 1)))
    q = b.conv("q", x, rng.uniform(-1, 1, (3, 2, 1, 1)))
    r = b.conv("r", b.concat([p, b.add("s", [p, q])]), rng.uniform(-1, 1, (2, 6, 1, 1)))
    net = b.build(outputs=[r])
    g = build_unit_graph(net, view="filan", edge_norm="nnz")
    names = g.unit_names()
    pairs = sorted((names[s], names[d]) for s, d in zip(g.src, g.dst))
    # r's input 0..2 are p's channels, 3..5 the Add's: p and q each once more
    assert len(pairs) == 2 * 9 and pairs.count(("p:0", "r:0")) == 2 and pairs.count(("q:0", "r:0")) == 1
    assert g.group_names == ("p", "q", "r") and g.widths == (6, 2)


def test_filan_view_refuses_networks_without_conv_to_conv():
    b = DagBuilder()
    x = b.input("x", channels=3)
    net = b.build(outputs=[b.dense("d2", b.activation(b.dense("d1", x, np.ones((4, 3))), "relu"), np.ones((2, 4)))])
    with pytest.raises(ModgraphError, match="filan view"):
        build_unit_graph(net, view="filan")


@pytest.mark.parametrize("method,options", [("sbm", {"layer_aware": False}), ("nested-sbm", {"layer_aware": False}),
                                            ("modularity", {}), ("spectral", {"k": 2})])
def test_planted_modules_across_adds_are_recovered_in_the_coupled_view(method, options):
    net, truth = residual_modules()
    g = build_unit_graph(net, view="coupled")
    stream = truth[net.unit_offsets[1]:net.unit_offsets[2]]          # conv a's channels = the stream's
    t = np.concatenate([truth[:4], stream, truth[-4:]])
    p = detect(g, method=method, seed=1, **options)
    assert ari(t, p.labels) == 1.0


@pytest.mark.parametrize("method,options", [("sbm", {}), ("nested-sbm", {}), ("modularity", {}), ("spectral", {"k": 2})])
def test_planted_modules_across_adds_in_the_split_view(method, options):
    """spectral recovers both modules exactly; the modularity-based methods never mix them but cut
    each one at an Add (its identity edges, one per channel, are the weakest links: docs/methods.md)."""
    net, truth = residual_modules()
    g = build_unit_graph(net)
    p = detect(g, method=method, seed=1, **options)
    pieces = [set(truth[p.labels == m].tolist()) for m in range(p.n_modules)]
    assert all(len(x) == 1 for x in pieces) and p.n_modules <= 4
    if method == "spectral":
        assert ari(truth, p.labels) == 1.0
    dag = module_dag(g, p)
    assert all(len(m.drives) == 2 for m in dag.modules)
    assert sorted(m.input_support for m in dag.modules)[0] == ["x:0", "x:1"]
    if method == "spectral":
        assert sorted(m.units["add2"] for m in dag.modules) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]


def test_sculpting_and_subfunctions_follow_skip_edges_and_run_on_a_plain_cnn():
    net, truth = residual_modules()
    g = build_unit_graph(net)
    for method in ("sculpting", "subfunctions"):            # more planted DAGs: test_dag_methods.py
        assert ari(truth, detect(g, method=method, seed=1).labels) == 1.0
    with pytest.raises(ModgraphError, match="bipartite"):
        detect(g, method="spectral", k=2, solver="bipartite")
    cnn, _ = small_cnn(width=3)
    assert detect(build_unit_graph(cnn), method="sculpting").labels.size == 1 + 9 + 10


def test_reachability_through_adds():
    net, truth = residual_modules()
    g = build_unit_graph(net)
    r = reachability(g, towards="inputs")
    outs = g.output_units()
    assert r.shape == (g.n_units, 4)
    assert r[outs].tolist() == [[True, True, False, False]] * 2 + [[False, False, True, True]] * 2


def test_block_shuffle_keeps_every_group_pair_block():
    net, _ = residual_modules()
    g = build_unit_graph(net)
    for null in ("layer", "layer_nonzero"):
        s = shuffle_graph(g, null, seed=4)
        key = lambda h: sorted(zip(h.group[h.src].tolist(), h.group[h.dst].tolist()))  # noqa: E731
        assert key(s) == key(g) and sorted(s.value) == sorted(g.value)
        assert s.edge_type.tolist() == [g.edge_type[g.group[g.src] * 100 + g.group[g.dst] == kk][0]
                                        for kk in sorted(g.group[g.src] * 100 + g.group[g.dst])]
        assert np.array_equal(shuffle_graph(g, null, seed=4).src, s.src)
    assert not np.array_equal(shuffle_graph(g, "layer", seed=4).src, g.src)
    res = significance(net, method="modularity", n_shuffles=3, seed=0)
    assert res.n_shuffles == 3 and res.significant
