"""All-or-nothing output folders: write into a temporary sibling, rename it into place at the end.

``with staged_folder(out) as tmp:`` yields an empty folder ``.<name>.<random>.part`` beside
``out``; when the block ends normally it becomes ``out`` (an earlier ``out`` is swapped out and
removed), when it raises (Ctrl-C included) it is removed. So ``out`` is always absent or
complete: a run killed outright (SIGKILL, power loss) can leave only a hidden ``.part`` (or,
in the instant of the swap, ``.old``) sibling, never a partial ``out``.

Examples
--------
>>> import pathlib, tempfile
>>> out = pathlib.Path(tempfile.mkdtemp()) / "report"
>>> with staged_folder(out) as tmp:
...     _ = (tmp / "a.txt").write_text("done")
>>> sorted(p.name for p in out.iterdir()), sorted(p.name for p in out.parent.iterdir())
(['a.txt'], ['report'])
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

__all__ = ["staged_folder"]


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM for the few system calls of the swap, so Ctrl-C lands before or after."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _swap_in(tmp: Path, out: Path) -> None:
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        os.replace(out, old)                  # old is an empty folder: a folder may replace it
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)                  # out absent or an empty folder


@contextlib.contextmanager
def staged_folder(out):
    """Yield a temporary folder beside ``out`` that replaces ``out`` when the block succeeds."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)     # mkdtemp makes 0700; the output gets the usual mode
        yield tmp
        with _signals_held():
            _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
