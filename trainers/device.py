"""Where the trainers compute: ``cpu``, ``cuda`` or ``auto``, and CUDA's deterministic mode.

:func:`resolve_device` turns the ``--device`` value into a :class:`torch.device` (``auto`` = ``cuda``
when ``torch.cuda.is_available()``, else ``cpu``) and refuses ``cuda`` where torch sees no GPU with
a one-line :class:`DeviceError`. :func:`device_mode` is the context a run on that device executes in:
on CUDA it sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (unless already set; cuBLAS reads it when its
first handle is made, so before the first matrix product), turns on
``torch.use_deterministic_algorithms(True, warn_only=True)``, turns off cuDNN's benchmark mode and
TF32 (cuDNN convolutions use TF32 by default; here they compute in float32, as on the CPU), and
restores the previous settings on exit; on the CPU it changes nothing.

What is seeded and what is reproducible: a run's seed fixes the initial weights (drawn on the CPU
from a private generator), the minibatch order (a CPU generator, so the same on every device) and
the dropout draws (``torch.manual_seed``, which seeds the CPU and every GPU). CPU runs repeat bit for
bit. CUDA runs repeat bit for bit on the same GPU, driver and torch *where torch has a deterministic
kernel for every op*: ``warn_only=True`` means an op without one (torch's list names ``NLLLoss`` on
CUDA, which ``cross_entropy`` uses) warns and runs instead of raising, so a CUDA run is seeded but
not guaranteed bit-identical to another CUDA run, and never bit-identical to a CPU run (other kernels,
other summation orders, CUDA's own dropout generator): compare CPU and CUDA runs statistically.

Examples
--------
>>> resolve_device("cpu")
device(type='cpu')
>>> with device_mode(resolve_device("cpu")):
...     torch.are_deterministic_algorithms_enabled()
False
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch

__all__ = ["DEVICES", "DeviceError", "resolve_device", "device_mode"]

#: the values of ``--device``
DEVICES = ("cpu", "cuda", "auto")


class DeviceError(ValueError):
    """A device that cannot be used here (one line, no traceback at the command line)."""


def resolve_device(name) -> torch.device:
    """``cpu``, ``cuda`` (or ``cuda:N``), ``auto`` or a :class:`torch.device` -> a usable device."""
    if isinstance(name, torch.device):
        name = str(name)
    kind = str(name).split(":")[0]
    if kind not in DEVICES or (kind != "cuda" and name != kind):
        raise DeviceError(f"device: expected one of {', '.join(DEVICES)}, found {name!r}")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        built = "built without CUDA" if torch.version.cuda is None else f"CUDA {torch.version.cuda}, no GPU visible"
        raise DeviceError(f"device {name!r}: CUDA is not available to torch {torch.__version__} ({built}); "
                          "use cpu or auto")
    return torch.device(name)


@contextmanager
def device_mode(device: torch.device):
    """Run the body with CUDA's deterministic settings when ``device`` is a GPU (restored afterwards)."""
    if device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    torch.use_deterministic_algorithms(True, warn_only=True)
    cudnn.benchmark = cudnn.allow_tf32 = matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = before[2:]
