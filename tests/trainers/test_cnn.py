"""The clusterability CNNs: small CNN training + pruning on fake 28×28 images, random-init exports.

Oracles: ONNX Runtime (the exported file computes what the torch model computes), the
Glorot-uniform bound, the pruning schedule's exact survivor counts.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from modgraph.io import load

from trainers import cli
from trainers.clusterability import sparsity_at
from trainers.cnn import SMALL_CNN, VGG13, export_cnn_onnx, small_cnn, vgg13
from trainers.cnn_train import CNNConfig, random_init_cnns, train_cnn
from trainers.sculpt import torch_threads
from trainers.testing import fake_digits


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convs: one torch thread (two threads thrash on the shared 2-core machine)."""
    with torch_threads(1):
        yield


TINY = {"channels": (4, 4, 4), "dense": (8,)}
TINY_VGG = {"channels": (2, 2, 4, 4, 4, 4, 4, 8, 8, 8, 8, 8, 8), "dense": (8, 8)}


def _images(n=300, seed=0):
    return fake_digits(n, n_test=100, seed=seed)


def _run_onnx(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def _initialisers(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def test_architectures_are_the_published_layer_lists():
    net = small_cnn(seed=0)
    assert [c.out_channels for c in net.convs] == [64, 64, 64]
    assert [b.pool for b in net.blocks] == [False, True, True] and [b.dropout for b in net.blocks] == [0.25] * 3
    assert [tuple(l.weight.shape) for l in net.linears] == [(128, 64 * 7 * 7), (10, 128)]
    assert net.dense_blocks[0].dropout == 0.5 and not net.conv_bns and not net.dense_bns
    v = vgg13(seed=0)
    assert [c.out_channels for c in v.convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert [i for i, b in enumerate(v.blocks) if b.pool] == [1, 3, 6, 9, 12]
    assert all(b.batch_norm for b in v.blocks) and len(v.conv_bns) == 13
    assert [b.dropout for b in v.blocks] == [0.3, 0, 0.4, 0, 0.4, 0.4, 0, 0.4, 0.4, 0, 0.4, 0.4, 0.5]
    assert [tuple(l.weight.shape) for l in v.linears] == [(512, 512), (512, 512), (10, 512)]
    assert SMALL_CNN["input"] == (1, 28, 28) and VGG13["input"] == (3, 32, 32)


@pytest.mark.parametrize("build", [small_cnn, vgg13], ids=["small-cnn", "vgg13"])
def test_random_init_is_glorot_uniform_zero_bias_and_seeded(build):
    net = build(seed=3)
    for layer in [*net.convs, *net.linears]:
        w = layer.weight.detach()
        receptive = w[0, 0].numel()                       # 9 for convs, 1 for dense
        lim = math.sqrt(6.0 / ((w.shape[0] + w.shape[1]) * receptive))
        assert float(w.abs().max()) <= lim and float(w.abs().max()) > 0.98 * lim
        assert float(w.std()) == pytest.approx(lim / math.sqrt(3), rel=0.05)
        assert float(layer.bias.detach().abs().max()) == 0.0
    for bn in [*net.conv_bns.values(), *net.dense_bns.values()]:
        assert bn.eps == 1e-3 and torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    again, other = build(seed=3), build(seed=4)
    assert all(torch.equal(a, b) for a, b in zip(net.kernels, again.kernels))
    assert not any(torch.equal(a, b) for a, b in zip(net.kernels, other.kernels))


def test_random_init_files_match_torch_under_onnx_runtime_and_repeat_per_seed(tmp_path):
    written = random_init_cnns("vgg13", seeds=[0, 1], out_dir=tmp_path / "a", **TINY_VGG)
    again = random_init_cnns("vgg13", seeds=[0], out_dir=tmp_path / "b", **TINY_VGG)
    assert [Path(p).name for p in written] == ["vgg13-seed0.onnx", "vgg13-seed0.h5", "vgg13-seed1.onnx",
                                               "vgg13-seed1.h5"]
    paths = written[::2]
    a0, a1, b0 = _initialisers(paths[0]), _initialisers(paths[1]), _initialisers(again[0])
    assert a0.keys() == b0.keys() and all(np.array_equal(a0[k], b0[k]) for k in a0)
    assert any(not np.array_equal(a0[k], a1[k]) for k in a0 if a0[k].ndim == 4)
    model = vgg13(seed=0, **TINY_VGG).eval()
    x = np.random.default_rng(0).normal(size=(5, 3, 32, 32)).astype(np.float32)
    want = torch.softmax(model(torch.from_numpy(x)), 1).detach().numpy()
    np.testing.assert_allclose(_run_onnx(paths[0], x), want, atol=1e-4)
    dag = load(written[1])                                   # modgraph HDF5 2.0: a DagNetwork, BN as gains
    np.testing.assert_allclose(dag.forward(x), want, atol=1e-5)
    assert [g.name for g in dag.groups if g.op_type == "conv"] == [f"conv{i}" for i in range(1, 14)]
    assert dag.metadata["architecture"] == "vgg13" and dag.metadata["seed"] == 0
    proto = onnx.load(paths[0])
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Conv") == 13 and ops.count("BatchNormalization") == 14 and ops.count("MaxPool") == 5
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["modgraph.metadata"])
    assert meta == {"task": "random-init", "architecture": "vgg13", "seed": 0, "init": "glorot_uniform",
                    "channels": list(TINY_VGG["channels"]), "dense": [8, 8], "input": [3, 32, 32]}
    with pytest.raises(ValueError, match="unknown architecture 'resnet'; choose one of small-cnn, vgg13"):
        random_init_cnns("resnet", seeds=[0], out_dir=tmp_path)


def test_training_prunes_every_kernel_to_the_schedule_and_masks_stay_zero(tmp_path):
    cfg = CNNConfig(seed=1, epochs=2, prune_epochs=1, batch_size=32, lr=1e-2, dropout=False, every=3,
                    **TINY)                                  # T = 10 steps, mask updates at t = 0, 3, 6, 9
    data = _images()
    watched = []

    def check(phase, t, model):                             # after every step: masked weights are exactly 0
        if phase == "prune":
            watched.append([int(m.sum()) for m in model.masks])
            assert all(float((w.detach() * (1 - m)).abs().max()) == 0.0 for w, m in zip(model.kernels, model.masks))

    rec = train_cnn(data, config=cfg, out_dir=tmp_path, on_step=check)
    model = rec["models"]["pruned"]
    sizes = [k.numel() for k in model.kernels]
    want = [[round((1 - sparsity_at(3 * ((t - 1) // 3), T=10)) * s) for s in sizes] for t in range(1, 11)]
    assert watched == want and watched[0] == [round(0.5 * s) for s in sizes]       # 50 % from step 0
    assert rec["sparsity_per_layer"] == [1 - round(0.1 * s) / s for s in sizes]
    assert [int(m.sum()) for m in model.masks] == [round(0.1 * s) for s in sizes]   # s(T) = 90 % at the end
    assert rec["test_accuracy_unpruned"] > 0.5 and 0 <= rec["test_accuracy_pruned"] <= 1
    pruned = _initialisers(tmp_path / "pruned.onnx")
    nonzero = sorted(int((a != 0).sum()) for a in pruned.values() if a.ndim in (2, 4))
    assert nonzero == sorted(round(0.1 * s) for s in sizes)
    dag = load(tmp_path / "pruned.h5")
    weights = [g.weight for g in dag.groups if g.weight is not None]
    assert [int(np.count_nonzero(w)) for w in weights] == [round(0.1 * s) for s in sizes]
    assert dag.metadata["phase"] == "pruned" and dag.metadata["test_accuracy_pruned"] == rec["test_accuracy_pruned"]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["channels"] == [4, 4, 4] and run["test_accuracy_pruned"] == rec["test_accuracy_pruned"]


def test_exports_match_the_torch_models_under_onnx_runtime_and_runs_repeat(tmp_path):
    cfg = CNNConfig(seed=2, epochs=1, prune_epochs=1, batch_size=64, dropout=True, **TINY)
    data = _images(n=200)
    a = train_cnn(data, config=cfg, out_dir=tmp_path)
    b = train_cnn(data, config=cfg)
    x = data[2][:50]
    for phase in ("unpruned", "pruned"):
        model = a["models"][phase]
        want = torch.softmax(model(torch.from_numpy(x)), 1).detach().numpy()
        np.testing.assert_allclose(_run_onnx(tmp_path / f"{phase}.onnx", x), want, atol=1e-4)
        np.testing.assert_allclose(load(tmp_path / f"{phase}.h5").forward(x), want, atol=1e-5)
        assert all(torch.equal(p, q) for p, q in zip(model.kernels, b["models"][phase].kernels))
        meta = json.loads({p.key: p.value for p in onnx.load(tmp_path / f"{phase}.onnx").metadata_props}
                          ["modgraph.metadata"])
        assert meta["phase"] == phase and meta["task"] == "mnist-cnn-clusterability"
    assert not torch.equal(a["models"]["unpruned"].kernels[0], a["models"]["pruned"].kernels[0])
    nodes = [n for n in onnx.load(tmp_path / "pruned.onnx").graph.node if n.op_type != "Identity"]
    assert [n.op_type for n in nodes] == ["Conv", "Relu", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool",
                                          "Flatten", "Gemm", "Relu", "Gemm", "Softmax"]
    assert [n.name for n in nodes if n.op_type in ("Conv", "Gemm")] == ["/conv1/Conv", "/conv2/Conv", "/conv3/Conv",
                                                                         "/dense1/Gemm", "/output/Gemm"]


def test_no_pruning_phase_writes_the_unpruned_net_only(tmp_path):
    cfg = CNNConfig(seed=0, epochs=1, prune_epochs=0, dropout=False, **TINY)
    rec = train_cnn(_images(n=100), config=cfg, out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "unpruned.h5", "unpruned.onnx"]
    assert "test_accuracy_pruned" not in rec and list(rec["models"]) == ["unpruned"]


def test_bad_data_shape_is_refused():
    x, y, xt, yt = _images(n=50)
    with pytest.raises(ValueError, match=r"train data: expected images \(n, 1, 28, 28\) and n labels, "
                                         r"found \(50, 784\)"):
        train_cnn((x.reshape(50, -1), y, xt, yt), config=CNNConfig(**TINY))


def test_export_of_a_masked_model_bakes_the_masks_in(tmp_path):
    model = small_cnn(seed=0, **TINY)
    masks = [torch.from_numpy((np.random.default_rng(i).random(tuple(k.shape)) < 0.3).astype(np.float32))
             for i, k in enumerate(model.kernels)]
    model.set_masks(masks)
    export_cnn_onnx(model, tmp_path / "m.onnx")
    arrays = [a for a in _initialisers(tmp_path / "m.onnx").values() if a.ndim in (2, 4)]
    assert sorted(int((a != 0).sum()) for a in arrays) == sorted(int(m.sum()) for m in masks)


def test_cli_random_cnn_and_mnist_cnn_errors(tmp_path, capsys):
    out = tmp_path / "rand"
    assert cli.main(["random-cnn", "--arch", "small-cnn", "--channels", "3,3,3", "--dense", "5", "--seeds", "0..2",
                     "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"small-cnn-seed{s}.{e}" for s in range(3) for e in ("h5", "onnx")]
    assert cli.main(["random-cnn", "--arch", "vgg13", "--channels", "4,4", "--out", str(tmp_path / "x")]) == 2
    assert "--channels: expected 13 comma-separated positive integers, found '4,4'" in capsys.readouterr().err
    assert cli.main(["random-cnn", "--arch", "small-cnn", "--seeds", "a", "--out", str(tmp_path / "x")]) == 2
    assert "--seeds: expected integers such as 0,1,2 or 0..5, found 'a'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    run = tmp_path / "run"
    assert cli.main(["mnist-cnn", "--data-dir", str(tmp_path), "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz: file: expected a file with md5 f68b3c2dcbeaaa9fbdd348bbdeb94873" in err
    assert cli.main(["mnist-cnn", "--prune-epochs", "-1", "--out", str(run)]) == 2
    assert "--prune-epochs >= 0" in capsys.readouterr().err
    assert not run.exists()


def test_cli_mnist_cnn_trains_prunes_and_reports(tmp_path, capsys, monkeypatch):
    import trainers.cnn_train as cnn_train

    monkeypatch.setattr(cnn_train, "cnn_mnist", lambda data_dir=None: _images(n=128))   # no real MNIST in tests
    out = tmp_path / "run"
    assert cli.main(["mnist-cnn", "--epochs", "1", "--prune-epochs", "1", "--channels", "4,4,4", "--dense", "8",
                     "--seed", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    run = json.loads((out / "run.json").read_text())
    assert f"test accuracy: unpruned {run['test_accuracy_unpruned']:.4f}, pruned " in captured.out
    assert "prune: 100%" in captured.err and "4/4" in captured.err              # 2 + 2 steps of batch 64
    assert run["config"]["seed"] == 3 and run["config"]["dense"] == [8] and run["n_train"] == 128
    assert run["config"]["dropout"] is False                    # the authors' control unless --dropout
    assert sorted(p.name for p in out.iterdir()) == ["pruned.h5", "pruned.onnx", "run.json", "unpruned.h5",
                                                     "unpruned.onnx"]
