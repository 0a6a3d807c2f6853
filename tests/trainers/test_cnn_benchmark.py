"""benchmarks/cnn_clusterability.py (issue 18): the channel-graph stand-in and the random-init stage."""
import importlib
from pathlib import Path

import numpy as np
import pytest

from trainers.cnn import small_cnn, vgg13

ROOT = Path(__file__).resolve().parents[2]
VGG_TINY = (2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6)


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("cnn_clusterability")


def test_channel_chain_edges_are_numpy_matrix_one_norms_of_conv_to_conv_blocks(bench):
    model = small_cnn(seed=5, channels=(3, 4, 2), dense=(6,))
    net = bench.channel_chain(model)
    assert [(l.n_in, l.n_out) for l in net.layers] == [(3, 4), (4, 2)]      # image -> conv1 and dense dropped
    for layer, conv in zip(net.layers, model.convs[1:]):
        k = conv.weight.detach().double().numpy()
        want = np.array([[np.linalg.norm(np.abs(k[o, i]), ord=1) for i in range(k.shape[1])]
                         for o in range(k.shape[0])])
        np.testing.assert_allclose(layer.dense(), want, rtol=1e-12)
    assert [l.n_out for l in bench.channel_chain(vgg13(seed=0, channels=VGG_TINY)).layers] == list(VGG_TINY[1:])


def test_random_stage_writes_one_file_per_arch_and_seed(bench, tmp_path):
    bench.main(["random", "--arch", "small-cnn", "--nets", "2", "--out", str(tmp_path)])
    assert sorted(p.name for p in (tmp_path / "random").iterdir()) == ["small-cnn-seed0.h5", "small-cnn-seed0.onnx",
                                                                       "small-cnn-seed1.h5", "small-cnn-seed1.onnx"]


def test_channel_chain_equals_the_dag_networks_conv_to_conv_filan_edges(bench):
    from modgraph.dag_edges import EDGE_TYPES, unit_edges
    from trainers.cnn_dag import to_dag

    model = small_cnn(seed=1, channels=(3, 4, 2), dense=(6,))
    dag = to_dag(model)
    e = unit_edges(dag, edge_norm="filan")
    off = {g.name: dag.unit_offsets[i] for i, g in enumerate(dag.groups)}
    conv = e.type == EDGE_TYPES.index("conv")
    for layer, (a, b) in zip(bench.channel_chain(model).layers, [("conv1", "conv2"), ("conv2", "conv3")]):
        pick = conv & (e.src >= off[a]) & (e.src < off[b]) & (e.dst >= off[b])
        got = np.zeros((layer.n_out, layer.n_in))
        got[e.dst[pick] - off[b], e.src[pick] - off[a]] = e.weight[pick]
        np.testing.assert_allclose(got, layer.dense(), rtol=1e-6)
