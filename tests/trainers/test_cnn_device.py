"""Issue 18 on other machines: ``--device`` (cpu / cuda / auto) and ``--jobs`` (runs in parallel processes).

What a CPU-only machine can check: ``auto`` falls back to the CPU and gives the CPU's run bit for bit,
``cuda`` without CUDA is one line and exit 2 (no traceback) in both commands, CUDA's deterministic
settings are set and restored, and ``train --jobs 2`` (spawned processes) gives the same runs, bit
for bit, as training them one by one (the significance tests' ``--jobs`` is ``modgraph.nulls``'
``n_jobs``, tested there).
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from trainers import cli
from trainers.cnn_train import CNNConfig, train_cnn
from trainers.device import DeviceError, device_mode, resolve_device
from trainers.sculpt import torch_threads
from trainers.testing import fake_digits

ROOT = Path(__file__).resolve().parents[2]
TINY = {"channels": (4, 4, 4), "dense": (8,)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("cnn_clusterability")


def _images(n=96, seed=0):
    return fake_digits(n, n_test=64, seed=seed)


def test_resolve_device_names_and_the_missing_gpu(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match=r"^device 'cuda': CUDA is not available to torch .*; use cpu or auto$"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match=r"device 'cuda:1': CUDA is not available"):
        resolve_device("cuda:1")
    for bad in ("gpu", "cpu:0", "autox"):
        with pytest.raises(DeviceError, match=f"device: expected one of cpu, cuda, auto, found '{bad}'"):
            resolve_device(bad)


def test_cuda_mode_is_deterministic_inside_and_restored_after(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    flags = lambda: (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,  # noqa: E731
                     torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    before = flags()
    with device_mode(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled() == before[0]
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    with device_mode(torch.device("cuda")):          # sets flags only: needs no GPU
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert flags() == before
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    with device_mode(torch.device("cuda")):
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"        # a user's own setting is kept


def test_auto_on_a_cpu_machine_is_the_cpu_run_bit_for_bit(no_cuda, tmp_path):
    cfg = CNNConfig(seed=4, epochs=1, prune_epochs=1, dropout=True, **TINY)
    a = train_cnn(_images(), config=cfg, device="auto", out_dir=tmp_path)
    b = train_cnn(_images(), config=cfg)
    assert a["device"] == b["device"] == "cpu" and a["deterministic"] == "cpu"
    assert a["train_history"] == b["train_history"] and a["prune_history"] == b["prune_history"]
    for phase in ("unpruned", "pruned"):
        assert all(torch.equal(p, q) for p, q in zip(a["models"][phase].kernels, b["models"][phase].kernels))
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["device"] == "cpu" and run["train_seconds"] > 0 and run["prune_seconds"] > 0
    assert run["seconds"] >= run["train_seconds"] + run["prune_seconds"]


def test_the_epoch_loss_is_the_mean_batch_loss_over_the_epoch(monkeypatch):
    """The loss is summed on the device and read once per epoch: still the mean of the batch losses."""
    from torch.nn import functional as F

    from trainers.clusterability import run_phase
    from trainers.cnn import small_cnn

    x, y, _, _ = _images(n=80)
    x, y = torch.from_numpy(x), torch.from_numpy(y).long()
    batches, cross_entropy = [], F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda out, t: batches.append((cross_entropy(out, t), len(t))) or
                        batches[-1][0])
    hist = run_phase(small_cnn(seed=0, **TINY), x, y, CNNConfig(seed=0, batch_size=32, **TINY), epochs=1,
                     prune=False, gen=torch.Generator().manual_seed(0))
    assert [n for _, n in batches] == [32, 32, 16]
    assert hist[0]["loss"] == sum(float(loss.detach()) * n for loss, n in batches) / 80


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cuda_without_a_gpu_is_one_line_and_exit_2(no_cuda, tmp_path, capsys, bench):
    run = tmp_path / "run"
    assert cli.main(["mnist-cnn", "--device", "cuda", "--out", str(run), "--quiet"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert line.startswith("modgraph-train mnist-cnn: error: --device: device 'cuda': CUDA is not available")
    assert not run.exists()
    with pytest.raises(SystemExit) as stop:
        bench.main(["trained", "--device", "cuda", "--out", str(run)])
    assert stop.value.code == 2
    assert _one_line_error(capsys.readouterr().err).startswith(
        "cnn_clusterability.py: error: --device: device 'cuda': CUDA is not available")
    assert not run.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_the_installed_command_says_it_in_one_line_too(tmp_path):
    done = subprocess.run([sys.executable, "-m", "trainers.cli", "mnist-cnn", "--device", "cuda", "--out",
                           str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "--device: device 'cuda': CUDA is not available" in _one_line_error(done.stderr)


def _weights(path):
    with h5py.File(path, "r") as f:
        out = {}
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_train_with_two_jobs_gives_the_runs_trained_one_by_one(bench, tmp_path, monkeypatch, capfd):
    import trainers.cnn_train

    monkeypatch.setattr(trainers.cnn_train, "cnn_mnist", lambda **kw: _images(n=160))
    common = ["--seeds", "0", "1", "--epochs", "1", "--train-subset", "64", "--threads", "1"]
    bench.main(["train", *common, "--jobs", "2", "--out", str(tmp_path / "par")])
    out = capfd.readouterr().out                                        # the workers write to fd 1
    assert "training 2 runs in 2 processes x 1 torch thread(s) on cpu" in out
    assert "plain seed 1: prune epoch 1/1 loss" in out                  # the workers' epoch lines
    bench.main(["train", *common, "--jobs", "1", "--out", str(tmp_path / "seq")])
    par, seq = (json.loads((tmp_path / d / "train.json").read_text()) for d in ("par", "seq"))
    assert (par["jobs"], seq["jobs"], par["train_subset"]) == (2, 1, 64)
    keys = ("condition", "seed", "unpruned", "pruned", "sparsity_per_layer", "n_train", "device")
    assert [[r[k] for k in keys] for r in par["runs"]] == [[r[k] for k in keys] for r in seq["runs"]]
    assert [r["n_train"] for r in par["runs"]] == [64, 64]
    with pytest.raises(SystemExit):                   # finished runs of another setting are not reused
        bench.main(["train", "--seeds", "0", "--epochs", "1", "--out", str(tmp_path / "seq")])
    assert "plain-seed0/run.json: trained on 64 images for 1 epochs, expected 160 and 1" in capfd.readouterr().err
    for seed in (0, 1):
        for phase in ("unpruned", "pruned"):
            a, b = (_weights(tmp_path / d / f"plain-seed{seed}/{phase}.h5") for d in ("par", "seq"))
            assert len(a) == 10 and a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
