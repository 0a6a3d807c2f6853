"""Significance on CNN channel graphs (issue 18): the trainers' exports, loaded back, through modgraph's pipeline.

Oracles: the channel graph and the spectral clustering recomputed here from the torch kernels with
numpy alone (clusterability.md §1.2, §2, §3: matrix 1-norm of |K[o, i]|, BN gain on the producer's
column, dense L_sym eigendecomposition, U / sqrt(d), sign flip, then the same k-means), and the
shuffle's invariants per conv -> conv block (§4.1).
"""
import json

import numpy as np
import pytest
import torch

from modgraph.cli import main as modgraph_main
from modgraph.detect._kmeans import kmeans
from modgraph.detect.spectral import spectral
from modgraph.graph import build_unit_graph, drop_isolated
from modgraph.io import load, save
from modgraph.metrics import ari
from modgraph.nulls import shuffle_graph, significance
from trainers.cnn import small_cnn, vgg13
from trainers.cnn_dag import to_dag

VGG_TINY = (3, 3, 4, 4, 5, 5, 5, 4, 4, 4, 3, 3, 3)


def _export(model, tmp_path, name="net.h5"):
    path = tmp_path / name
    save(to_dag(model.eval()), path)
    return path


def _reference_adjacency(model):
    """Dense |channel graph| from the torch kernels: block l = matrix 1-norms of conv l+1, BN gains on columns."""
    convs = model.convs
    widths = [c.out_channels for c in convs]
    off = np.concatenate([[0], np.cumsum(widths)])
    a = np.zeros((off[-1], off[-1]))
    for l in range(1, len(convs)):
        k = (convs[l].weight * model.masks[l]).detach().double().numpy()
        gain = np.ones(widths[l - 1])
        if model.blocks[l - 1].batch_norm:
            bn = model.conv_bns[str(l - 1)]
            gain = np.abs((bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy())
        for o in range(k.shape[0]):
            for i in range(k.shape[1]):
                w = np.linalg.norm(np.abs(k[o, i]), ord=1) * gain[i]
                a[off[l - 1] + i, off[l] + o] = a[off[l] + o, off[l - 1] + i] = w
    return a


def _reference_spectral(a, k, seed, n_init=25):
    """The spec's spectral clustering (§2) on a dense adjacency, and its n-cut (§3)."""
    keep = a.sum(axis=1) > 0
    a = a[np.ix_(keep, keep)]
    d = a.sum(axis=1)
    lap = np.eye(d.size) - a / np.sqrt(np.outer(d, d))
    _, u = np.linalg.eigh(lap)
    emb = u[:, :k] / np.sqrt(d)[:, None]
    emb *= np.sign(emb[np.abs(emb).argmax(axis=0), np.arange(k)])
    labels, _ = kmeans(emb, k, n_init=n_init, seed=seed)
    cut = 0.0
    for c in range(k):
        inside = labels == c
        cut += a[inside][:, ~inside].sum() / (d[inside].sum() + 1e-8)
    return labels, cut


@pytest.mark.parametrize("arch,k", [("small-cnn", 4), ("vgg13", 6)])
def test_channel_graph_ncut_equals_the_numpy_reference(tmp_path, arch, k):
    model = small_cnn(seed=3, channels=(9, 7, 8), dense=(5,)) if arch == "small-cnn" else \
        vgg13(seed=3, channels=VGG_TINY, dense=(4, 4))
    if arch == "vgg13":                                   # trained-like BN statistics, so the gains differ
        gen = torch.Generator().manual_seed(0)
        for bn in model.conv_bns.values():
            bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.2)
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=gen) * 2 - 1)
    net = load(_export(model, tmp_path))
    g = drop_isolated(build_unit_graph(net, view="filan", edge_norm="filan"))
    a = _reference_adjacency(model)
    np.testing.assert_allclose(g.adjacency().toarray(), a, rtol=2e-6, atol=1e-12)   # float32 weights in the file
    for seed in (0, 1):
        p = spectral(g, k=k, seed=seed)
        labels, cut = _reference_spectral(g.adjacency().toarray(), k, seed)
        assert p.stats["ncut"] == pytest.approx(cut, abs=1e-9)
        assert ari(labels, p.labels) == 1.0
        assert abs(cut - _reference_spectral(a, k, seed)[1]) < 1e-4     # the torch kernels themselves


def test_layer_shuffle_keeps_each_conv_block_multiset_and_moves_the_mask(tmp_path):
    model = small_cnn(seed=1, channels=(6, 5, 4), dense=(3,))
    gen = torch.Generator().manual_seed(2)
    masks = [m.clone() for m in model.masks]
    for l in (1, 2):                                      # whole 3x3 slices pruned: those edges vanish
        masks[l] = masks[l] * (torch.rand(masks[l].shape[:2], generator=gen) > 0.4)[:, :, None, None].float()
    model.set_masks(masks)
    g = drop_isolated(build_unit_graph(load(_export(model, tmp_path)), view="filan"))
    assert g.group_names == ("conv1", "conv2", "conv3")

    def blocks(h):
        out = {}
        for s, d, v in zip(h.group[h.src].tolist(), h.group[h.dst].tolist(), h.value.tolist()):
            out.setdefault((s, d), []).append(v)
        return {key: sorted(v) for key, v in out.items()}

    def pairs(h):
        return sorted(zip(h.src.tolist(), h.dst.tolist()))

    for null in ("layer", "layer_nonzero"):
        moved = 0
        for i in range(5):
            s = shuffle_graph(g, null, seed=np.random.SeedSequence([0, i]))
            assert blocks(s) == blocks(g)                 # each conv -> conv block keeps its multiset
            assert s.n_units == g.n_units and len(set(pairs(s))) == s.n_edges
            assert all(s.group[a] + 1 == s.group[b] for a, b in pairs(s))     # edges stay in their block
            if null == "layer_nonzero":
                assert pairs(s) == pairs(g)               # the exact mask
            moved += pairs(s) != pairs(g)
        assert moved == (5 if null == "layer" else 0)


def test_significance_on_the_channel_graph_of_an_exported_cnn(tmp_path):
    model = small_cnn(seed=0, channels=(10, 10, 10), dense=(4,))
    path = _export(model, tmp_path)
    res = significance(load(path), method="spectral", options={"k": 4}, n_shuffles=6, seed=2, view="filan",
                       edge_norm="filan")
    _, cut = _reference_spectral(_reference_adjacency(model), 4, 2)
    assert res.n_units == 30 and res.true_value == pytest.approx(cut, abs=1e-4)
    assert len(res.null_values) == 6 and 0 < res.p <= 1
    again = significance(load(path), method="spectral", options={"k": 4}, n_shuffles=6, seed=2, view="filan")
    assert again.null_values == res.null_values           # filan is the filan view's default norm


def test_cli_significance_filan_view_and_default_view_on_a_trainer_export(tmp_path, capsys):
    from trainers.cnn_train import random_init_cnns

    h5 = [p for p in random_init_cnns("small-cnn", seeds=[0], out_dir=tmp_path, channels=(6, 6, 6), dense=(5,))
          if p.endswith(".h5")][0]
    out = tmp_path / "sig"
    assert modgraph_main(["significance", h5, "--view", "filan", "--edge-norm", "filan", "--k", "3",
                          "--shuffles", "4", "--out", str(out)]) == 0
    rec = json.loads((out / "small-cnn-seed0-spectral-layer.json").read_text())
    assert (rec["n_units"], rec["n_shuffles"], rec["options"]) == (18, 4, {"k": 3})
    assert "significant" in capsys.readouterr().out
    out2 = tmp_path / "sig-default"                      # the default (split) view: every unit of the CNN
    assert modgraph_main(["significance", h5, "--k", "3", "--shuffles", "2", "--out", str(out2)]) == 0
    rec = json.loads((out2 / "small-cnn-seed0-spectral-layer.json").read_text())
    assert rec["n_units"] == 1 + 6 * 3 + 5 + 10 and len(rec["null_values"]) == 2


def _residual_cnn(seed=0, width=5):
    """A user's residual CNN (not from the trainers): conv, two residual blocks with Adds, BN, dense head."""
    from modgraph.dag_builder import DagBuilder

    rng = np.random.default_rng(seed)
    b = DagBuilder()
    x = b.input("image", channels=2, spatial=(6, 6))
    h = b.activation(b.conv("stem", x, rng.uniform(-1, 1, (width, 2, 3, 3)), pads=(1, 1, 1, 1)), "relu")
    for i in range(2):
        t = b.conv(f"block{i}.conv", h, rng.uniform(-1, 1, (width, width, 3, 3)), pads=(1, 1, 1, 1))
        t = b.batch_norm(t, rng.uniform(0.5, 2, width), np.zeros(width), np.zeros(width), np.ones(width))
        h = b.activation(b.add(f"block{i}.add", [h, t]), "relu")
    y = b.dense("fc", b.flatten(b.global_avg_pool(h)), rng.standard_normal((3, width)))
    return b.build(outputs=[y])


@pytest.mark.parametrize("view", ["split", "filan"])
def test_significance_on_a_users_residual_cnn_matches_the_reference(tmp_path, view):
    path = tmp_path / "resnet.h5"
    save(_residual_cnn(), path)
    g = drop_isolated(build_unit_graph(load(path), view=view))
    assert not g.is_consecutive                              # the Adds' edges skip layers: the general solver
    res = significance(load(path), method="spectral", options={"k": 3}, n_shuffles=4, seed=1, view=view)
    _, cut = _reference_spectral(g.adjacency().toarray(), 3, 1)
    assert res.true_value == pytest.approx(cut, abs=1e-9) and res.n_units == g.n_units
    assert len(set(res.null_values)) > 1


def test_the_onnx_export_gives_the_same_channel_graph_and_significance_as_the_h5(tmp_path, capsys):
    from trainers.cnn_train import random_init_cnns

    onnx_path, h5 = random_init_cnns("vgg13", seeds=[1], out_dir=tmp_path, channels=VGG_TINY, dense=(4, 4))
    a = drop_isolated(build_unit_graph(load(onnx_path), view="filan"))
    b = drop_isolated(build_unit_graph(load(h5), view="filan"))
    assert a.n_units == sum(VGG_TINY) and np.array_equal(a.src, b.src) and np.array_equal(a.dst, b.dst)
    np.testing.assert_allclose(a.value, b.value, rtol=1e-6)
    outs = []
    for path in (onnx_path, h5):
        out = tmp_path / ("sig-" + path.rsplit(".", 1)[1])
        assert modgraph_main(["significance", path, "--view", "filan", "--edge-norm", "filan", "--k", "4",
                              "--shuffles", "3", "--out", str(out)]) == 0
        outs.append(json.loads((out / "vgg13-seed1-spectral-layer.json").read_text()))
    assert outs[0]["true_value"] == pytest.approx(outs[1]["true_value"], abs=1e-6)
    assert outs[0]["null_values"] == pytest.approx(outs[1]["null_values"], abs=1e-6)
