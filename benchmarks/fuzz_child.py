"""Forked children for the fuzz harness's own risky work (issue 16): mutations and the campaign itself.

``benchmarks/fuzz.py`` mutates HDF5 files with h5py, many of them already damaged by an earlier
byte-level mutation, and libhdf5 on a damaged file can crash, spin or corrupt its process's state.
The seed-21 modgraph-hdf5 campaign of 2026-12-04 died that way: mutation 7,013 segfaulted in
``h5py.File(path, "a")`` after thousands of in-process mutations of damaged files (the same
mutation on the same bytes in a fresh process succeeds: the state was corrupt), its stderr full of
h5py ``ObjectID.__dealloc__`` errors and no table. So:

- :func:`in_child` runs one step in a child made with ``os.fork()`` (a copy of the harness, whose own
  libhdf5 never touched a damaged file) under a time limit and an address-space allowance above
  the child's start, stdout and stderr sent to /dev/null; the step's result comes back as bytes,
  a crash, hang or exception as ``None`` and a reason.
- :func:`supervised` runs a whole campaign in a child in its own process group and waits; if the
  campaign dies (a signal, an exception) it says so on stderr, kills what the campaign left running
  (the sandbox server) and removes the campaign's temporary folder.

Linux only (fork, /proc/self/statm, prctl), like ``modgraph.io.sandbox``.
"""
from __future__ import annotations

import contextlib
import faulthandler
import os
import resource
import shutil
import signal
import sys
import traceback
from pathlib import Path

from modgraph.io.isolate import fork_collect, quiet_child   # the same fork plumbing as load's own reads

__all__ = ["in_child", "supervised"]

_RAISED = 70                                                # a child's exit status when its step raised


def in_child(step, *, timeout_s: float, headroom_bytes: int) -> tuple[bytes | None, str]:
    """Run ``step()`` (returns bytes) in a forked child; returns (its bytes, "") or (None, why it failed).

    The child may grow its address space by ``headroom_bytes`` (``RLIMIT_AS``, never above the hard
    limit in force) and run ``timeout_s`` seconds; it ignores Ctrl-C (the parent kills it) and dies
    with the parent. Nothing but the returned bytes leaves the child.
    """
    data, timed_out, status = fork_collect(lambda fd: _child(step, fd, headroom_bytes), timeout_s)
    if timed_out:
        return None, "hang"
    if os.WIFSIGNALED(status):
        return None, f"crash ({_signal_name(os.WTERMSIG(status))})"
    if os.WEXITSTATUS(status) == _RAISED:
        return None, "exception"
    if os.WEXITSTATUS(status) != 0:
        return None, f"exit status {os.WEXITSTATUS(status)}"
    return data, ""


def supervised(run, work: Path) -> int:
    """Run ``run()`` (returns an exit code) in a forked child in its own process group; returns its exit
    code, or 3 after saying on stderr how it died. ``work`` (the campaign's temporary folder) and every
    process left in the group are gone afterwards, however the child ended. SIGINT and SIGTERM sent to
    this process are passed on to the child, which stops cleanly."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _campaign(run)
    forward = lambda signum, frame: _signal_quietly(pid, signum)      # noqa: E731
    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)                  # the sandbox server and its reads, if left
        shutil.rmtree(work, ignore_errors=True)
    if os.WIFSIGNALED(status):
        how = f"was killed by {_signal_name(os.WTERMSIG(status))}"
    elif os.WEXITSTATUS(status) in (0, 1, 130, 143):        # done (1: findings), interrupted, terminated
        return os.WEXITSTATUS(status)
    else:
        how = f"exited with status {os.WEXITSTATUS(status)}"
    print(f"fuzz.py: the campaign process {how}; its table is lost (the last progress line above says how "
          f"far it got); temporary folder {work} removed", file=sys.stderr, flush=True)
    return 3


# -- helpers ----------------------------------------------------------------------------------------
def _child(step, out_fd: int, headroom_bytes: int) -> None:
    code = 0
    try:
        quiet_child()                                       # h5py's dealloc errors, libhdf5's diagnostics
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = _address_space() + headroom_bytes
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        view = memoryview(step())
        while view:
            view = view[os.write(out_fd, view):]
    except BaseException:                                   # noqa: BLE001 - the parent reports "exception"
        code = _RAISED
    finally:
        os._exit(code)


def _campaign(run) -> None:
    code = 3
    try:
        os.setpgid(0, 0)                                    # so the supervisor can stop all it starts
        faulthandler.enable()                               # a crash here still says where
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _terminate)
        code = run()
    except KeyboardInterrupt:
        print("fuzz.py: interrupted", file=sys.stderr)
        code = 130
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 3
    except BaseException:                                   # noqa: BLE001 - a harness bug: show it
        traceback.print_exc()
        code = 3
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _terminate(signum, frame):
    print("fuzz.py: terminated", file=sys.stderr)
    raise SystemExit(143)


def _signal_quietly(pid: int, signum: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signum)


def _signal_name(sig: int) -> str:
    return signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
