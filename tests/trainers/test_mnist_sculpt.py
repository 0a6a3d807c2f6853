"""MNIST two-digit task 1 sculpting on tiny synthetic IDX files (runs in seconds)."""
from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import pytest
import torch

from modgraph.io import load
from modgraph.score import criteria_for, truth_from_metadata
from trainers.cli import main
from trainers.mnist_sculpt import MnistSculptConfig, evaluate_chunked, fit, mnist_ground_truth, sculpt_mnist
from trainers.model import MaskedMLP
from trainers.sculpt import count_rounds
from trainers.tasks.mnist import MNIST_FILES, two_digit_task
from trainers.train import TrainConfig, evaluate


def _idx(array):
    return bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.astype(np.uint8).tobytes()


def _fake_digits(folder, n=40, seed=0) -> dict:
    """Digit d = a bright 3-row band at rows 2d..2d+2 over faint noise; returns md5sums."""
    rng = np.random.default_rng(seed)
    md5s = {}
    for split in ("train", "test"):
        labels = np.arange(n) % 10
        images = rng.integers(0, 10, (n, 28, 28))
        for i, d in enumerate(labels):
            images[i, 2 * d + 2:2 * d + 6, :] = 255
        for part, arr in (("images", images), ("labels", labels)):
            blob = gzip.compress(_idx(arr))
            (folder / MNIST_FILES[f"{split}_{part}"][0]).write_bytes(blob)
            md5s[f"{split}_{part}"] = hashlib.md5(blob).hexdigest()
    return md5s


@pytest.fixture
def task(tmp_path):
    md5s = _fake_digits(tmp_path)
    return two_digit_task(1, seed=0, data_dir=tmp_path, md5sums=md5s, per_class=10, n_val=2)


def test_fit_keeps_the_best_validation_epoch_and_chunked_evaluation_is_exact(task):
    x, y = torch.as_tensor(task.x_train), torch.as_tensor(task.y_train)
    xv, yv = torch.as_tensor(task.x_val), torch.as_tensor(task.y_val)
    net = MaskedMLP([1568, 32, 32, 20], n_stack=2, seed=0)
    acc, loss = fit(net, x, y, xv, yv, TrainConfig(lr=1e-2, epochs=4, batch_size=32, noise_std=0.0), seed=0)
    ref_acc, ref_loss = evaluate(net, xv, yv)
    chunk_acc, chunk_loss = evaluate_chunked(net, xv, yv, chunk=37)
    assert torch.allclose(acc, ref_acc) and torch.allclose(chunk_acc, ref_acc)
    assert torch.allclose(loss, ref_loss, rtol=1e-5) and torch.allclose(chunk_loss, ref_loss, rtol=1e-5)
    assert acc.min() > 0.97                                  # the bands are learnable in 4 epochs


def test_sculpt_mnist_gate_history_and_export_scored_as_task1(task, tmp_path):
    cfg = MnistSculptConfig(train=TrainConfig(lr=1e-2, epochs=4, batch_size=32, noise_std=0.0),
                            unit_steps=(40.0,), edge_steps=(20.0,), chunk=100)
    result, info = sculpt_mnist(task, [1568, 32, 32, 20], config=cfg, seed=0)
    assert info["gate"] == pytest.approx(info["dense_val_accuracy"] - 0.005)
    accepted = [h for h in result.history if h.get("accepted")]
    assert accepted and all(h["accuracy"] >= info["gate"] for h in accepted)
    assert result.meets_gate and result.accuracy >= info["gate"]
    assert result.sparsity > 40.0 and 0.9 < info["test_accuracy"] <= 1.0
    from trainers.mnist_sculpt_cli import export_mnist
    paths = export_mnist(result, info, tmp_path / "run", config={"test": True})
    net = load(paths["hdf5"])
    assert net.widths == (1568, 32, 32, 20)
    assert sum(layer.weight.nnz for layer in net.layers) == result.edges
    truth = truth_from_metadata(net.metadata)
    assert truth.input_groups == mnist_ground_truth()["input_groups"]
    assert truth.success == ["input_separability", "output_subfunction"] == criteria_for("mnist-task1")[0]
    assert json.loads(paths["run"].read_text())["test_accuracy"] == info["test_accuracy"]


def test_ground_truth_splits_pixels_by_column():
    gt = mnist_ground_truth()
    left, right = gt["input_groups"]
    assert all(i % 56 < 28 for i in left) and all(i % 56 >= 28 for i in right)
    assert sorted(left + right) == list(range(1568)) and gt["output_groups"] == [list(range(10)),
                                                                                   list(range(10, 20))]


def test_count_rounds_replays_the_step_rule():
    # Pu 50, targets ≤ 60 pass: 50 ok; 100 rejected untrained (step 25); 75 no (step 12.5); 62.5 no: stop
    assert count_rounds(50.0, start=0.0, p_min=12.5, limit=60.0) == 3
    # p_min 6.25: ... 62.5 no (step 6.25); 56.25 ok; 62.5 no: stop
    assert count_rounds(50.0, start=0.0, p_min=6.25, limit=60.0) == 5
    assert count_rounds(10.0, start=0.0, p_min=10.0, limit=100.0) == 9


def test_cli_rejects_bad_options_before_writing(tmp_path, capsys):
    assert main(["mnist-sculpt", "--out", str(tmp_path / "o"), "--gate-drop", "2"]) == 2
    assert "--gate-drop: expected a fraction in [0, 1), found 2.0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
