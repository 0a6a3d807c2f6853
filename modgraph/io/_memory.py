"""Large arrays for readers, allocated so that first touching them is cheap everywhere.

Examples
--------
>>> a = new_array(3, "float32")
>>> a.tolist(), a.flags.writeable
([0.0, 0.0, 0.0], True)
"""
from __future__ import annotations

import numpy as np

__all__ = ["new_array"]


def new_array(n: int, dtype) -> np.ndarray:
    """A writable 1-D array of ``n`` zeros whose memory comes from a ``bytearray``.

    numpy asks the kernel for transparent huge pages on large arrays (MADV_HUGEPAGE); in
    virtual machines that back guest memory lazily, first-touching such pages cost several
    times more than the ordinary pages a bytearray gets (measured: benchmarks/load.py).
    """
    return np.frombuffer(bytearray(n * np.dtype(dtype).itemsize), dtype=dtype)
