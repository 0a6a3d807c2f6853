"""MNIST from the original IDX files: a checked reader and the tasks built on it.

- :func:`read_idx` reads one IDX file (gzip or raw), checking the md5, the magic number
  and that the payload matches the header's sizes.
- :func:`load_mnist` reads the four standard files (uint8 images, int64 labels).
- :func:`clusterability_mnist` is the clusterability papers' data set: 60k / 10k,
  pixels / 255, flattened to 784 (arXiv 2103.03386).
- :func:`two_digit_task` builds Neural Sculpting's two-digit tasks 1 and 2 (28×56 pairs,
  1,568 inputs; ``neural-sculpting.md`` §2) with a fixed seed.

The data folder defaults to ``../shared/data/mnist`` next to the repository (the
environment variable ``MODGRAPH_MNIST_DIR`` or the ``data_dir`` argument override it).

Examples
--------
>>> import gzip, pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.gz"
>>> _ = path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9])))
>>> read_idx(path).tolist()
[7, 0, 9]
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modgraph.errors import FormatError

__all__ = ["MNIST_FILES", "default_data_dir", "read_idx", "load_mnist", "clusterability_mnist",
           "two_digit_task", "TwoDigitTask"]

#: split part -> (file name, md5 of the gzip file as published)
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
_EXPECTED_NDIM = {"train_images": 3, "train_labels": 1, "test_images": 3, "test_labels": 1}


def default_data_dir() -> Path:
    """``$MODGRAPH_MNIST_DIR`` if set, else ``../shared/data/mnist`` beside the repository."""
    env = os.environ.get("MODGRAPH_MNIST_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _raw_bytes(path: Path, md5: str | None) -> bytes:
    want = f"a file with md5 {md5}" if md5 else "an IDX file"
    if not path.is_file():
        raise FormatError(path, "file", want, "no such file")
    if md5 is not None:
        got = _md5(path)
        if got != md5:
            raise FormatError(path, "md5", md5, f"{got} (corrupt or a different file)")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise FormatError(path, "gzip stream", "a complete gzip file", str(err) or "truncated") from err
    return raw


def read_idx(path, *, md5: str | None = None, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed or raw).

    Parameters
    ----------
    path : str or Path
    md5 : str, optional
        Expected md5 of the file as stored (the ``.gz``); checked first when given.
    ndim : int, optional
        Expected number of dimensions (3 for images, 1 for labels).

    Raises
    ------
    FormatError
        Missing file, wrong md5, bad gzip, wrong magic number, or a payload whose
        length does not match the header.
    """
    path = Path(path)
    raw = _raw_bytes(path, md5)
    if len(raw) < 4:
        raise FormatError(path, "header", "at least 4 bytes", f"{len(raw)} bytes")
    zero, dtype_code, n_dim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or dtype_code != 0x08 or not 1 <= n_dim <= 4:
        raise FormatError(path, "magic number", "0x0000080N (unsigned bytes, N = 1..4 dimensions)",
                          "0x" + raw[:4].hex())
    if ndim is not None and n_dim != ndim:
        raise FormatError(path, "magic number", f"{ndim} dimension(s) (0x0000080{ndim})", f"{n_dim}")
    head = 4 + 4 * n_dim
    if len(raw) < head:
        raise FormatError(path, "header", f"{head} bytes", f"{len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw[4:head], dtype=">u4"))
    size = int(np.prod(shape))
    if len(raw) - head != size:
        raise FormatError(path, "payload", f"{size} bytes for shape {shape}", f"{len(raw) - head} bytes")
    return np.frombuffer(raw[head:], dtype=np.uint8).reshape(shape).copy()


def load_mnist(*, data_dir=None, md5sums: dict | None = None) -> dict:
    """The four MNIST arrays: ``train_images`` (n, 28, 28) uint8, ``train_labels`` (n,) int64, ...

    ``md5sums`` maps a part name (see :data:`MNIST_FILES`) to the md5 expected for it;
    by default the published md5 of each file. Images and labels must agree in count,
    images must be 28×28 and labels 0..9.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    out = {}
    for part, (name, md5) in MNIST_FILES.items():
        want = md5 if md5sums is None else md5sums.get(part)
        out[part] = read_idx(folder / name, md5=want, ndim=_EXPECTED_NDIM[part])
    for split in ("train", "test"):
        images, labels = out[f"{split}_images"], out[f"{split}_labels"]
        where = folder / MNIST_FILES[f"{split}_labels"][0]
        if images.shape[1:] != (28, 28):
            raise FormatError(folder / MNIST_FILES[f"{split}_images"][0], "header", "28×28 images",
                              f"{images.shape[1]}×{images.shape[2]}")
        if labels.shape[0] != images.shape[0]:
            raise FormatError(where, "header", f"{images.shape[0]} labels (one per image)", f"{labels.shape[0]}")
        if labels.size and labels.max() > 9:
            raise FormatError(where, "payload", "labels 0..9", f"label {int(labels.max())}")
        out[f"{split}_labels"] = labels.astype(np.int64)
    return out


def clusterability_mnist(*, data_dir=None, md5sums: dict | None = None, dtype=np.float32):
    """``(x_train, y_train, x_test, y_test)``: pixels / 255, flattened to 784; labels int64.

    With the standard files, ``x_train.shape == (60000, 784)`` and ``x_test.shape == (10000, 784)``.
    """
    d = load_mnist(data_dir=data_dir, md5sums=md5sums)
    flat = [(d[f"{s}_images"].reshape(len(d[f"{s}_images"]), -1) / np.float32(255)).astype(dtype)
            for s in ("train", "test")]
    return flat[0], d["train_labels"], flat[1], d["test_labels"]


@dataclass(frozen=True, eq=False)
class TwoDigitTask:
    """A Neural Sculpting two-digit task: inputs (n, 1568) in [0, 1], multi-label targets.

    ``*_pair`` hold the (left digit, right digit) of every image. The validation split
    is the last ``n_val`` of the 800 training images of each class (empty when 0).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    pair_train: np.ndarray
    pair_val: np.ndarray
    pair_test: np.ndarray
    metadata: dict = field(default_factory=dict)


def _targets(task: int, a: int, b: int) -> np.ndarray:
    if task == 1:
        y = np.zeros(20, np.float32)
        y[a] = y[10 + b] = 1.0
        return y
    return np.array([((a ^ b) >> k) & 1 for k in (2, 1, 0)], np.float32)   # MSB first


def _ground_truth(task: int) -> dict:
    left = [r * 56 + c for r in range(28) for c in range(28)]
    right = [r * 56 + 28 + c for r in range(28) for c in range(28)]
    if task == 1:
        modules = [{"name": "left digit", "inputs": left, "outputs": list(range(10))},
                   {"name": "right digit", "inputs": right, "outputs": list(range(10, 20))}]
        return {"task": "mnist-two-digit-1", "id": "[1568,2,20]", "modules": modules}
    modules = [{"name": "left digit", "inputs": left, "reused": 3}, {"name": "right digit", "inputs": right,
                                                                       "reused": 3}]
    modules += [{"name": f"xor bit {2 - k}", "children": ["left digit", "right digit"], "outputs": [k]}
                for k in range(3)]
    return {"task": "mnist-two-digit-2", "id": "[1568,2,3,3]", "modules": modules}


def two_digit_task(task: int, *, seed: int = 0, n_val: int = 100, data_dir=None,
                   md5sums: dict | None = None, per_class: int = 1000, dtype=np.float32) -> TwoDigitTask:
    """Neural Sculpting's MNIST two-digit task 1 or 2 (``neural-sculpting.md`` §2).

    The 70k train + test digits are pooled; for each ordered pair (a, b) — all 100 for
    task 1, a, b ∈ 0..7 for task 2 — ``per_class`` images 28×56 are made from a random
    digit-a image (with replacement) on the left and a random digit-b image on the right.
    Within a class the first 80 % go to train (of which the last ``n_val`` to validation,
    the spec's deviation for epoch selection) and the last 20 % to test.
    Task 1 targets: one-hot left digit (y1..y10) then one-hot right digit (y11..y20).
    Task 2 targets: the 3 bits of a XOR b, most significant first.
    """
    if task not in (1, 2):
        raise ValueError(f"unknown two-digit task {task!r}; choose 1 or 2")
    n_train = per_class * 4 // 5
    if not 0 <= n_val < n_train:
        raise ValueError(f"n_val must be in 0..{n_train - 1}, got {n_val}")
    d = load_mnist(data_dir=data_dir, md5sums=md5sums)
    images = np.concatenate([d["train_images"], d["test_images"]])
    labels = np.concatenate([d["train_labels"], d["test_labels"]])
    by_digit = [np.flatnonzero(labels == c) for c in range(10)]
    rng = np.random.default_rng(seed)
    digits = range(10) if task == 1 else range(8)
    xs, ys, pairs = [], [], []
    for a in digits:
        for b in digits:
            if not (by_digit[a].size and by_digit[b].size):
                raise FormatError(data_dir or default_data_dir(), "labels", f"images of digits {a} and {b}",
                                  "none")
            left = images[rng.choice(by_digit[a], per_class)]
            right = images[rng.choice(by_digit[b], per_class)]
            xs.append(np.concatenate([left, right], axis=2).reshape(per_class, 1568))
            ys.append(np.broadcast_to(_targets(task, a, b), (per_class, 20 if task == 1 else 3)))
            pairs.append(np.broadcast_to(np.array([a, b]), (per_class, 2)))
    x = (np.stack(xs) / np.float32(255)).astype(dtype)       # (classes, per_class, 1568)
    y, pair = np.stack(ys), np.stack(pairs)
    cut = (slice(0, n_train - n_val), slice(n_train - n_val, n_train), slice(n_train, per_class))
    parts = [(x[:, s].reshape(-1, 1568), y[:, s].reshape(-1, y.shape[-1]), pair[:, s].reshape(-1, 2))
             for s in cut]
    meta = _ground_truth(task) | {"seed": seed, "per_class": per_class, "n_val_per_class": n_val}
    return TwoDigitTask(f"mnist-two-digit-{task}", parts[0][0], parts[0][1], parts[1][0], parts[1][1],
                        parts[2][0], parts[2][1], parts[0][2], parts[1][2], parts[2][2], meta)
