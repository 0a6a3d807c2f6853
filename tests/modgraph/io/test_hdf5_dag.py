"""modgraph HDF5 version 2 (DAGs): exact round trip of every op; chains stay version 1; bad files refused."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.errors import FormatError
from modgraph.io import load, save
from modgraph.testing import random_network


def _every_op(seed=0):
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.normal(size=s).astype(np.float32)             # noqa: E731
    b = DagBuilder()
    x = b.input("input", channels=4, spatial=(8, 8))
    c = b.activation(b.batch_norm(b.conv("c1", x, r(4, 4, 3, 3), r(4), pads=(1, 1, 1, 1)), r(4), r(4), r(4),
                                  np.abs(r(4)) + 1), "leaky_relu", alpha=0.1)
    d = b.conv("dw", c, r(4, 1, 3, 3), strides=2, pads=(1, 1, 1, 1), group=4)            # (4, 4, 4)
    p = b.avg_pool(b.pad(c, (1, 1, 0, 0), mode="edge"), 2, strides=2, count_include_pad=True)
    a = b.add("add", [d, b.max_pool(c, 2), b.affine(p, r(4), r(4))])
    g = b.mul("gate", a, b.activation(b.conv("g", a, r(4, 4, 1, 1)), "sigmoid", assumed=True))
    lo, hi = b.split(g, [1, 3])
    cat = b.concat([hi, b.pad_channels(lo, 0, 2), b.slice(a, 0, 2)])                       # 8 channels
    t = b.conv_transpose("up", cat, r(8, 2, 2, 2), strides=2, group=2, output_padding=(0, 0))
    h = b.dense("fc", b.flatten(b.global_avg_pool(t), order="HWC"), r(3, 4), r(3))
    return b.build(outputs=[b.activation(h, "softmax"), b.global_max_pool(cat)], metadata={"task": "t"}, source_format="onnx")


def test_round_trip_is_exact(tmp_path):
    net = _every_op()
    save(net, tmp_path / "dag.h5")
    with h5py.File(tmp_path / "dag.h5") as f:
        assert f.attrs["format_version"] == "2.0" and f.attrs["network"] == "dag"
    back = load(tmp_path / "dag.h5")
    assert isinstance(back, DagNetwork) and back.source_format == "modgraph-hdf5"
    x = np.random.default_rng(1).normal(size=(2, 4, 8, 8))
    for got, want in zip(back.forward(x), net.forward(x)):
        assert np.array_equal(got, want)
    e0, e1 = net.edges(edge_norm="filan"), back.edges(edge_norm="filan")
    for col in ("src", "dst", "weight", "type", "nnz"):
        assert np.array_equal(getattr(e0, col), getattr(e1, col))
    s0, s1 = net.summary(), back.summary()
    s0.pop("source_format"), s1.pop("source_format")
    assert s0 == s1 and back.metadata == {"task": "t"}
    assert back.group("g").activation_assumed and back.group("c1").alpha == 0.1
    assert back.group("c1").weight.dtype == np.float32


def test_chains_are_written_as_version_1(tmp_path):
    net = random_network([4, 5, 3], seed=2)
    save(DagNetwork.from_layered(net), tmp_path / "a.h5")
    save(net, tmp_path / "b.h5")
    with h5py.File(tmp_path / "a.h5") as f:
        assert f.attrs["format_version"] == "1.0"
    a, b = load(tmp_path / "a.h5"), load(tmp_path / "b.h5")
    for la, lb in zip(a.layers, b.layers):
        assert (la.weight != lb.weight).nnz == 0 and np.array_equal(la.bias, lb.bias)


def _broken(tmp_path, edit):
    path = tmp_path / "dag.h5"
    save(_every_op(), path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


@pytest.mark.parametrize("edit, match", [
    (lambda f: f["steps/0003"].attrs.modify("inputs", np.array([5])),
     r"dag.h5: /steps/0003 attribute 'inputs': expected earlier steps \(0 .. 2; a DAG has no cycle\)"),
    (lambda f: f["steps/0001"].attrs.modify("op", "lstm"),
     r"/steps/0001 attribute 'op': expected one of activation, add"),
    (lambda f: (f["steps/0001"].__delitem__("weight"), f["steps/0001"].create_dataset("weight", data=np.ones((4, 3, 3, 3)))),
     r"/steps/0001 \(conv 'c1' weight\): expected 4 input channels per group"),
    (lambda f: f.attrs.modify("n_steps", 99), r"/steps: expected steps 0000 .. 0098"),
    (lambda f: (f["steps/0001"].__delitem__("weight"), f["steps/0001"].create_dataset("weight", shape=(10**9,), dtype="f4")),
     r"/steps/0001/weight: expected stored data backing its \(1000000000,\) shape, found 0 stored bytes"),
])
def test_bad_files_are_refused_naming_the_step(tmp_path, edit, match):
    with pytest.raises(FormatError, match=match):
        load(_broken(tmp_path, edit))


def test_info_prints_groups_and_the_unit_graph_routes_chains(tmp_path, capsys):
    from modgraph.cli import main
    from modgraph.graph import build_unit_graph

    save(_every_op(), tmp_path / "dag.h5")
    assert main(["info", str(tmp_path / "dag.h5")]) == 0
    out = capsys.readouterr().out
    assert "8 unit groups, 31 units, 80 edges" in out and "identity 12" in out and "sigmoid (assumed)" in out
    g = build_unit_graph(load(tmp_path / "dag.h5"))            # a DAG's split view: every unit, every edge
    assert (g.n_units, g.n_edges, g.view) == (31, 80, "split")
    chain = random_network([3, 4, 2], seed=3)
    a, b = build_unit_graph(DagNetwork.from_layered(chain)), build_unit_graph(chain)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("src", "dst", "value", "layer", "index"))
