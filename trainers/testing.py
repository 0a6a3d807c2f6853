"""Small synthetic data for tests and smoke runs of the trainers (never the real MNIST)."""
from __future__ import annotations

import numpy as np

__all__ = ["fake_digits"]


def fake_digits(n: int, *, n_test: int = 64, seed: int = 0):
    """Fake 28×28 "digits" of 4 classes: class c lights a 7×7 patch at a class-dependent place, plus noise.

    Returns ``(x, y, x_test, y_test)`` shaped like :func:`trainers.cnn_train.cnn_mnist`'s result
    (float32 images (n, 1, 28, 28) in [0, 1], integer labels), ``n`` training and ``n_test`` test images.

    >>> x, y, xt, yt = fake_digits(8, n_test=2)
    >>> x.shape, xt.shape, sorted(set(y.tolist())) <= [0, 1, 2, 3]
    ((8, 1, 28, 28), (2, 1, 28, 28), True)
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n + n_test)
    x = rng.uniform(0, 0.3, (n + n_test, 1, 28, 28)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, 0, 14 * r:14 * r + 7, 14 * col:14 * col + 7] += 0.7
    return x[:n], y[:n], x[n:], y[n:]
