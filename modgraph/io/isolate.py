"""Reads through libhdf5 are tried in a forked child first: a hang or crash inside the C library becomes a
FormatError instead of a process that never returns.

libhdf5 can loop forever or crash on a damaged file (``tests/modgraph/io/fuzz_findings/hdf5-heap-hang.h5``:
libhdf5 2.0.0 spins while reading a string attribute), and C code cannot be interrupted in-process.
So by default every read that goes through h5py (``load`` of a modgraph HDF5, Keras ``.h5`` or
``.keras`` file, the sniffers included, and ``read_hdf5`` / ``read_keras_h5`` / ``read_keras_zip``)
runs first in a child made with ``os.fork()`` (no re-import), under a time limit scaled to the file's
size (:meth:`~modgraph.io.limits.Limits.read_timeout`). The child runs the very same read and only
says that it returned (with a network or an error: its result, warnings and errors are dropped).
Then the parent runs the read itself, in-process, on the same bytes (the file's device, inode,
size, mtime and ctime are checked unchanged): libhdf5 is deterministic on a given file, so the
parent's read returns as the child's did, and its network, warnings and errors are exactly those
of an in-process read, because it is one. Nothing is sent between the processes but four bytes: no
pickle, no temporary file. The price is a second read (measured in ``docs/formats.md``). A child
that runs past the limit is killed; that, or a child killed by a signal (a crash, or the kernel's
out-of-memory killer), becomes a FormatError naming the file, what happened and what to do.

Fork safety: the child only runs the reader (h5py, numpy, json); h5py's global lock is held across
``fork()`` so no other thread can own it in the child (the child has no other threads), and the child
dies with its parent (``PR_SET_PDEATHSIG``). Linux only: macOS is not supported; where ``os.fork``
is missing, reads run in-process. Trusted callers can turn isolation off:
``load(path, isolate=False)``, ``Limits(isolate=False)`` or ``MODGRAPH_ISOLATE=0``.

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from modgraph.network import Layer, LayeredNetwork
>>> from modgraph.io import save
>>> path = pathlib.Path(tempfile.mkdtemp()) / "net.h5"
>>> save(LayeredNetwork([Layer.from_dense(np.eye(2))]), path)
>>> from modgraph.io.hdf5 import read_hdf5_file, _Ctx, _read
>>> run_isolated(path, lambda: read_hdf5_file(path, lambda f, p: _read(_Ctx(f, p)), expected="...")).widths
(2, 2)
"""
from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import select
import signal
import time
import warnings
from dataclasses import replace
from pathlib import Path

from modgraph.errors import FormatError
from modgraph.io.limits import ENV_READ_TIMEOUT, ENV_READ_TIMEOUT_PER_GB, Limits, current_limits, using_limits

__all__ = ["run_isolated", "isolation_wanted", "fork_collect", "quiet_child"]

_DONE = b"done"
_PR_SET_PDEATHSIG = 1


def isolation_wanted() -> bool:
    """Whether reads through libhdf5 run in a child now (the limits in force say so and fork exists)."""
    return current_limits().isolate and hasattr(os, "fork")


def run_isolated(path, read):
    """Run ``read()`` (which reads ``path``) first in a forked child under the time limit of the limits in
    force, then, once the child finished, in this process; a hang, crash or kill of the child raises a
    :class:`FormatError` instead."""
    path = Path(path)
    limits = current_limits()
    trusted = replace(limits, isolate=False)
    before = _identity(path)
    timeout = limits.read_timeout(before[2])
    parent = os.getpid()
    start = time.perf_counter()
    done, timed_out, status = fork_collect(lambda fd: _child(read, trusted, fd, parent), timeout)
    if timed_out:
        raise _timeout_error(path, limits, timeout)
    if done != _DONE:
        raise _death_error(path, status, time.perf_counter() - start)
    if _identity(path) != before:
        raise FormatError(path, "file", "a file that does not change while it is read",
                          "a file that changed during the isolated read (read it again once it is complete)")
    with using_limits(trusted):                             # libhdf5 finished on these bytes: read them here
        return read()


def _identity(path: Path) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


@contextlib.contextmanager
def _h5py_lock():
    """Hold h5py's global lock across fork, so the child does not start with it owned by another thread."""
    try:
        from h5py._objects import phil
    except ImportError:              # pragma: no cover - h5py is a dependency
        yield
        return
    with phil:
        yield


def _collect(fd: int, timeout: float):
    """Everything the child writes to ``fd`` until it closes it, or (b"", True) at the time limit."""
    chunks, deadline = [], time.perf_counter() + timeout
    try:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return b"", True
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return b"".join(chunks), False
                chunks.append(chunk)
    finally:
        os.close(fd)


def fork_collect(child, timeout: float) -> tuple[bytes, bool, int]:
    """Fork; the child runs ``child(write_fd)``, which must end with ``os._exit``; the parent collects what
    the child writes for at most ``timeout`` seconds (then kills it) and reaps it. Returns (the bytes,
    whether the time ran out, the wait status). An interrupt while waiting kills the child."""
    read_fd, write_fd = os.pipe()
    with _h5py_lock():
        pid = os.fork()
    if pid == 0:                                            # the child never returns
        os.close(read_fd)
        child(write_fd)
        os._exit(70)                                        # pragma: no cover - child() exits itself
    os.close(write_fd)
    try:
        data, timed_out = _collect(read_fd, timeout)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        pid = None
    finally:
        if pid is not None:                                 # an interrupt while waiting: stop the child
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    return data, timed_out, status


def quiet_child() -> None:
    """A forked child's first steps: Ctrl-C ignored (the parent kills it), no faulthandler dump (the
    parent reports a crash), stdout and stderr to /dev/null, killed when its parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.disable()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# -- the child --------------------------------------------------------------------------------------
def _child(read, limits: Limits, out_fd: int, parent: int) -> None:
    """Read (the result, warnings and errors do not matter: only that libhdf5 returns), say so, exit
    without any cleanup."""
    code = 0
    try:
        quiet_child()                                       # what the read prints, the parent's read prints
        if os.getppid() != parent:                          # the parent died before prctl took effect
            raise SystemExit
        with warnings.catch_warnings(), using_limits(limits):
            warnings.simplefilter("ignore")
            try:
                read()
            except BaseException:                           # noqa: BLE001 - the parent's own read raises it
                pass
        os.write(out_fd, _DONE)
    except BaseException:                                   # noqa: BLE001 - the parent reports a dead child
        code = 70
    finally:
        os._exit(code)


def _timeout_error(path: Path, limits: Limits, timeout: float) -> FormatError:
    return FormatError(path, "HDF5 read (isolated child process)",
                       f"a read within its time limit of {timeout:.1f} s ({ENV_READ_TIMEOUT}="
                       f"{limits.read_timeout_s:g} s + {ENV_READ_TIMEOUT_PER_GB}={limits.read_timeout_per_gb:g} s "
                       "per GB of file)",
                       f"no result after {timeout:.1f} s, so the read was stopped: the file is likely damaged "
                       f"(libhdf5 can loop forever on a damaged file); if it is intact, raise {ENV_READ_TIMEOUT}")


def _death_error(path: Path, status: int, seconds: float) -> FormatError:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        what = (f"was killed ({name}; out of memory? the kernel's OOM killer sends SIGKILL)" if sig == signal.SIGKILL
                else f"crashed ({name}) inside the reader: the file is likely damaged")
    else:
        what = f"exited (status {os.WEXITSTATUS(status)}) without a result"
    return FormatError(path, "HDF5 read (isolated child process)", "a read that completes",
                       f"the reading process {what} after {seconds:.1f} s")
