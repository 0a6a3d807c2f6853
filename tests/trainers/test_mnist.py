"""MNIST IDX reader and the tasks built on it; tiny IDX files made here (never the real data)."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from modgraph.errors import FormatError
from trainers.tasks import mnist
from trainers.tasks.mnist import (MNIST_FILES, clusterability_mnist, default_data_dir, load_mnist, read_idx,
                                  two_digit_task)


def _idx(array: np.ndarray) -> bytes:
    head = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return head + array.astype(np.uint8).tobytes()


def _fake_mnist(folder: Path, n_train=60, n_test=20, seed=0) -> dict:
    """Images whose pixel (0, 0) is the label and pixel (0, 1) a serial number; returns md5sums."""
    rng = np.random.default_rng(seed)
    md5s = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        images[:, 0, 0], images[:, 0, 1] = labels, np.arange(n) + (0 if split == "train" else 100)
        for part, arr in (("images", images), ("labels", labels)):
            name = MNIST_FILES[f"{split}_{part}"][0]
            blob = gzip.compress(_idx(arr))
            (folder / name).write_bytes(blob)
            md5s[f"{split}_{part}"] = hashlib.md5(blob).hexdigest()
    return md5s


def test_reads_gzip_and_raw_idx_with_header_checks(tmp_path):
    arr = np.arange(24).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx(arr)))
    (tmp_path / "a.raw").write_bytes(_idx(arr))
    assert np.array_equal(read_idx(tmp_path / "a.gz", ndim=3), arr)
    assert np.array_equal(read_idx(tmp_path / "a.raw"), arr)
    with pytest.raises(FormatError, match=r"a.raw: magic number: expected 1 dimension\(s\) \(0x00000801\), found 3"):
        read_idx(tmp_path / "a.raw", ndim=1)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + _idx(arr)[4:])
    with pytest.raises(FormatError, match=r"bad: magic number: expected 0x0000080N .*found 0x00000d01"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx(arr)[:-5])
    with pytest.raises(FormatError, match=r"short: payload: expected 24 bytes for shape \(2, 3, 4\), found 19 bytes"):
        read_idx(tmp_path / "short")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(_idx(arr))[:-6])
    with pytest.raises(FormatError, match=r"cut.gz: gzip stream: expected a complete gzip file"):
        read_idx(tmp_path / "cut.gz")


def test_missing_or_corrupt_files_name_the_file_and_the_expected_md5(tmp_path):
    name, md5 = MNIST_FILES["train_images"]
    with pytest.raises(FormatError, match=rf"{name}: file: expected a file with md5 {md5}, found no such file"):
        load_mnist(data_dir=tmp_path)
    _fake_mnist(tmp_path)
    with pytest.raises(FormatError, match=rf"{name}: md5: expected {md5}, found [0-9a-f]{{32}} \(corrupt"):
        clusterability_mnist(data_dir=tmp_path)


def test_load_and_clusterability_arrays(tmp_path):
    md5s = _fake_mnist(tmp_path)
    d = load_mnist(data_dir=tmp_path, md5sums=md5s)
    assert d["train_images"].shape == (60, 28, 28) and d["train_labels"].dtype == np.int64
    x, y, xt, yt = clusterability_mnist(data_dir=tmp_path, md5sums=md5s)
    assert x.shape == (60, 784) and xt.shape == (20, 784) and x.dtype == np.float32
    np.testing.assert_array_equal(x, d["train_images"].reshape(60, 784) / np.float32(255))
    assert np.array_equal(y, np.arange(60) % 10) and x.max() <= 1.0


def test_image_and_label_counts_must_agree(tmp_path):
    md5s = _fake_mnist(tmp_path)
    blob = gzip.compress(_idx(np.arange(19) % 10))
    (tmp_path / MNIST_FILES["test_labels"][0]).write_bytes(blob)
    md5s["test_labels"] = hashlib.md5(blob).hexdigest()
    with pytest.raises(FormatError, match="t10k-labels-idx1-ubyte.gz: header: expected 20 labels"):
        load_mnist(data_dir=tmp_path, md5sums=md5s)


def _digit_of(half: np.ndarray, pool: np.ndarray, labels: np.ndarray) -> int:
    """The label of the pool image equal to this 28×28 half (pixel (0, 0) encodes it)."""
    match = np.flatnonzero((pool == half).all(axis=(1, 2)))
    assert match.size >= 1
    return int(labels[match[0]])


def test_two_digit_task_1_pairs_and_targets(tmp_path):
    md5s = _fake_mnist(tmp_path)
    t = two_digit_task(1, seed=3, data_dir=tmp_path, md5sums=md5s, per_class=10, n_val=2)
    assert t.x_train.shape == (600, 1568) and t.x_val.shape == (200, 1568) and t.x_test.shape == (200, 1568)
    assert t.y_train.shape == (600, 20)
    d = load_mnist(data_dir=tmp_path, md5sums=md5s)
    pool = np.concatenate([d["train_images"], d["test_images"]]) / np.float32(255)
    labels = np.concatenate([d["train_labels"], d["test_labels"]])
    for i in (0, 123, 599):
        img = t.x_train[i].reshape(28, 56)                      # row-major: 28 left pixels, 28 right, ...
        a, b = t.pair_train[i]
        assert _digit_of(img[:, :28], pool, labels) == a and _digit_of(img[:, 28:], pool, labels) == b
        want = np.zeros(20)
        want[a], want[10 + b] = 1, 1
        assert np.array_equal(t.y_train[i], want)
    assert sorted(map(tuple, np.unique(t.pair_test, axis=0))) == [(a, b) for a in range(10) for b in range(10)]
    assert t.metadata["modules"][0]["inputs"][:3] == [0, 1, 2] and t.metadata["modules"][1]["inputs"][0] == 28


def test_two_digit_task_2_xor_bits_msb_first_and_fixed_seed(tmp_path):
    md5s = _fake_mnist(tmp_path)
    t = two_digit_task(2, seed=0, data_dir=tmp_path, md5sums=md5s, per_class=10, n_val=0)
    assert t.x_train.shape == (512, 1568) and t.x_val.shape == (0, 1568) and t.y_test.shape == (128, 3)
    for (a, b), y in zip(t.pair_train, t.y_train):
        assert y.tolist() == [((a ^ b) >> 2) & 1, ((a ^ b) >> 1) & 1, (a ^ b) & 1]
    assert set(np.unique(t.pair_train)) == set(range(8))
    again = two_digit_task(2, seed=0, data_dir=tmp_path, md5sums=md5s, per_class=10, n_val=0)
    other = two_digit_task(2, seed=1, data_dir=tmp_path, md5sums=md5s, per_class=10, n_val=0)
    assert np.array_equal(again.x_train, t.x_train) and not np.array_equal(other.x_train, t.x_train)
    with pytest.raises(ValueError, match="unknown two-digit task 3; choose 1 or 2"):
        two_digit_task(3, data_dir=tmp_path, md5sums=md5s)


def test_default_data_dir_is_shared_next_to_the_repo_and_md5s_match_the_shipped_list(monkeypatch):
    repo = Path(mnist.__file__).resolve().parents[2]
    monkeypatch.delenv("MODGRAPH_MNIST_DIR", raising=False)
    assert default_data_dir() == repo.parent / "shared" / "data" / "mnist"
    monkeypatch.setenv("MODGRAPH_MNIST_DIR", "/elsewhere")
    assert default_data_dir() == Path("/elsewhere")
    listed = dict(line.split()[::-1] for line in (repo.parent / "shared/data/mnist/MD5SUMS").read_text().splitlines()
                  if line.strip())
    assert {name: md5 for name, md5 in MNIST_FILES.values()} == listed
