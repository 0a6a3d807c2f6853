"""The clusterability MLP protocol on a fast slice: tiny synthetic data, a few steps."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modgraph.io import load
from trainers import cli
from trainers.clusterability import (ClusterabilityConfig, ClusterabilityMLP, magnitude_masks, sparsity_at,
                                     train_clusterability)


def _data(n=300, n_in=20, n_classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_classes, n_in))
    y = rng.integers(0, n_classes, n + 100)
    x = (centres[y] + rng.normal(0, 0.5, (n + 100, n_in))).astype(np.float32)
    return x[:n], y[:n], x[n:], y[n:]


def test_polynomial_schedule():
    T = 9380                                              # ceil(60000 / 128) * 20
    assert sparsity_at(0, T=T) == 0.5 and sparsity_at(T, T=T) == pytest.approx(0.9)
    assert sparsity_at(T // 2, T=T) == pytest.approx(0.9 - 0.4 * 0.5 ** 3)
    s = [sparsity_at(t, T=T) for t in range(0, T + 1, 10)]
    assert all(a <= b for a, b in zip(s, s[1:]))
    assert round(0.1 * 200704) == 200704 - round(sparsity_at(T - 10, T=T) * 200704)   # last update already ends at 90 %


def test_magnitude_masks_keep_exactly_the_largest_and_pruned_stay_pruned():
    w = torch.tensor([[5.0, -4.0, 3.0, 0.5], [-2.0, 1.0, 0.1, -6.0]])
    m = torch.ones_like(w)
    m[1, 3] = 0                                           # -6 is already pruned: it must stay pruned
    (new,) = magnitude_masks([w], [m], 0.5)
    assert new.tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    (tie,) = magnitude_masks([torch.ones(3, 3)], [torch.ones(3, 3)], 0.5)
    assert int(tie.sum()) == round(0.5 * 9)


def test_init_is_glorot_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = ClusterabilityMLP((784, 256, 10))
    lim = math.sqrt(6 / (784 + 256))
    w = model.linears[0].weight.detach()
    assert float(w.abs().max()) <= lim and float(w.abs().max()) > 0.99 * lim
    assert float(w.std()) == pytest.approx(lim / math.sqrt(3), rel=0.01)
    assert all(float(l.bias.detach().abs().max()) == 0.0 for l in model.linears)


@pytest.mark.parametrize("n, batch", [(300, 32), (250, 32)])   # T = 20 (a multiple of 10) and T = 16
def test_pruned_export_has_exactly_ninety_percent_zeros_per_layer(tmp_path, n, batch):
    cfg = ClusterabilityConfig(seed=1, dropout=0.5, widths=(20, 16, 16, 4), epochs=2, prune_epochs=2,
                               batch_size=batch)
    data = _data(n=n)
    rec = train_clusterability(data, config=cfg, out_dir=tmp_path)
    pruned, unpruned = load(tmp_path / "pruned.h5"), load(tmp_path / "unpruned.h5")
    for layer in pruned.layers:
        size = layer.n_in * layer.n_out
        assert layer.n_edges == round(0.1 * size)
        assert np.all(layer.weight.data != 0)
    assert [l.n_edges for l in unpruned.layers] == [320, 256, 64]
    assert rec["sparsity_per_layer"] == [1 - round(0.1 * s) / s for s in (320, 256, 64)]
    assert [l.activation for l in pruned.layers] == ["relu", "relu", "softmax"]
    meta = pruned.metadata
    assert meta["phase"] == "pruned" and meta["config"]["dropout"] == 0.5 and meta["task"] == "mnist-clusterability"
    assert meta["test_accuracy_pruned"] == rec["test_accuracy_pruned"] > 0.5
    assert unpruned.metadata["phase"] == "unpruned" and "test_accuracy_pruned" not in unpruned.metadata
    assert (tmp_path / "run.json").exists() and (tmp_path / "pruned.onnx").exists()


def test_export_computes_what_the_torch_model_computes_and_runs_are_reproducible():
    cfg = ClusterabilityConfig(seed=4, widths=(20, 12, 4), epochs=1, prune_epochs=1, batch_size=64)
    data = _data()
    a = train_clusterability(data, config=cfg)
    b = train_clusterability(data, config=cfg)
    net_a, net_b = a["networks"]["pruned"], b["networks"]["pruned"]
    for la, lb in zip(net_a.layers, net_b.layers):
        assert (la.weight != lb.weight).nnz == 0 and np.array_equal(la.bias, lb.bias)
    model = ClusterabilityMLP(cfg.widths)
    for lin, m, layer in zip(model.linears, model.masks, net_a.layers):
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(layer.dense()))
            lin.bias.copy_(torch.tensor(np.array(layer.bias)))
            m.copy_(torch.from_numpy(layer.mask.astype(np.float32)))
    model.eval()
    want = torch.softmax(model(torch.from_numpy(data[2])), dim=1).detach().numpy()
    np.testing.assert_allclose(net_a.forward(data[2]), want, atol=1e-5)


def test_cli_reports_missing_mnist_with_the_expected_md5_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["mnist-clusterability", "--data-dir", str(tmp_path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz: file: expected a file with md5 f68b3c2dcbeaaa9fbdd348bbdeb94873" in err
    assert not out.exists()
