"""benchmarks/cnn_clusterability.py (issue 18): the channel-graph stand-in and the random-init stage."""
import importlib
from pathlib import Path

import numpy as np
import pytest

from trainers.cnn import small_cnn, vgg13
from trainers.testing import fake_digits

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


def _fake_mnist(n=128, seed=0):
    return fake_digits(n, n_test=64, seed=seed)


def test_trained_stage_trains_then_tests_each_channel_graph_against_shuffles(bench, tmp_path, monkeypatch, capsys):
    """The one command of the trained-CNN result, end to end on synthetic data (full-width small CNN)."""
    import json

    import trainers.cnn_train
    from modgraph.detect.spectral import spectral
    from modgraph.graph import build_unit_graph, drop_isolated
    from modgraph.io import load

    monkeypatch.setattr(trainers.cnn_train, "cnn_mnist", lambda **kw: _fake_mnist())
    results = tmp_path / "results.md"
    bench.main(["trained", "--seeds", "0", "--epochs", "1", "--shuffles", "3", "--out", str(tmp_path),
                "--results", str(results)])
    rec = json.loads((tmp_path / "analysis.json").read_text())
    assert (rec["k"], rec["n_shuffles"], rec["view"]) == (12, 3, "filan")
    assert [(r["phase"], r["n_units"], r["n_shuffles"]) for r in rec["runs"]] == [("unpruned", 192, 3),
                                                                                 ("pruned", 192, 3)]
    for r in rec["runs"]:
        g = drop_isolated(build_unit_graph(load(tmp_path / f"plain-seed0/{r['phase']}.h5"), view="filan"))
        assert r["ncut"] == spectral(g, k=12, seed=0).stats["ncut"]
        assert r["p"] in (0.25, 0.5, 0.75, 1.0) and r["accuracy"] == json.loads(
            (tmp_path / "plain-seed0/run.json").read_text())[f"test_accuracy_{r['phase']}"]
    out = capsys.readouterr().out
    assert "| plain | 0 | pruned |" in out and "10.46 / 10.03" in out
    assert "<!-- BEGIN cnn-trained -->" in results.read_text() and "| plain | 0 | unpruned |" in results.read_text()
    bench.main(["analyze", "--seeds", "0", "--shuffles", "3", "--out", str(tmp_path)])       # again: same numbers
    again = json.loads((tmp_path / "analysis.json").read_text())["runs"]
    keys = ("ncut", "null_mean", "z", "p")
    assert [[r[key] for key in keys] for r in again] == [[r[key] for key in keys] for r in rec["runs"]]


def test_random_ncut_stage_goes_through_the_exported_files(bench, tmp_path, capsys):
    from modgraph.detect.spectral import spectral
    from modgraph.graph import build_unit_graph

    results = tmp_path / "results.md"
    bench.main(["random-ncut", "--arch", "small-cnn", "--nets", "1", "--out", str(tmp_path), "--results", str(results)])
    assert (tmp_path / "random/small-cnn-seed0.h5").exists()
    row = [l for l in capsys.readouterr().out.splitlines() if l.startswith("| small-cnn |")][0].split("|")
    assert row[3].strip() == "192" and row[4].strip() == "8,192" and row[9].strip() == "10.923 ± 0.007"
    torch_side = spectral(build_unit_graph(bench.channel_chain(small_cnn(seed=0))), k=12, seed=0).stats["ncut"]
    assert float(row[7].split("±")[0]) == pytest.approx(torch_side, abs=5e-4)       # the filan-norm column
    assert "<!-- BEGIN cnn-random -->" in results.read_text()
