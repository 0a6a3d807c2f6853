"""Read untrusted files in capped child processes: a fork server under an address-space cap.

:class:`Sandbox` starts one server process (``python -m modgraph.io.sandbox``) that sets
``RLIMIT_AS`` on itself, imports the readers once (and the modules named in ``preload``, e.g.
torch, so children do not pay for them), then forks one child per file. The child runs
:func:`modgraph.io.load` and reports how it ended; the server kills a child that runs past
the time limit. Used by the hostile-file tests and ``benchmarks/fuzz.py``; also usable to vet
a file before loading it in a long-lived process. ``load`` itself reads libhdf5 files in a child
with its own time limit (:mod:`modgraph.io.isolate`, 3 s for a small file): keep the sandbox's
``timeout_s`` above it (5 s here, 10 s in the fuzz harness), so that a file libhdf5 hangs on is
counted as ``refused`` (what a user sees), not as ``hang``.

Outcome kinds: ``ok`` (a network was read), ``refused`` (a :class:`~modgraph.errors.FormatError`),
``error`` (any other exception: a bug, message holds the traceback), ``memory`` (``MemoryError``:
the cap was reached), ``crash`` (the child died of a signal), ``hang`` (killed at the time limit).

Examples
--------
>>> import pathlib, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "junk.bin"
>>> _ = path.write_bytes(b"not a network")
>>> with Sandbox(cap_bytes=2 * 2**30, preload=()) as box:
...     outcome = box.run(path)
>>> outcome.kind, outcome.message.endswith("found a file starting with b'not a ne'")
('refused', True)
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Sandbox", "Outcome", "KINDS"]

KINDS = ("ok", "refused", "error", "memory", "crash", "hang")
_STDERR_KEEP = 4000


@dataclass(frozen=True)
class Outcome:
    """How one read ended: ``kind`` (one of :data:`KINDS`), the message (widths, error text or
    traceback), wall seconds, the child's peak resident memory (bytes) and what it wrote to stderr."""

    kind: str
    message: str
    seconds: float
    max_rss: int
    stderr: str = ""


class Sandbox:
    """A fork server reading files under ``cap_bytes`` of address space, ``timeout_s`` per file."""

    def __init__(self, cap_bytes: int = 2 * 2**30, timeout_s: float = 5.0, preload=("torch",)):
        self.cap_bytes, self.timeout_s = int(cap_bytes), float(timeout_s)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen([sys.executable, "-m", "modgraph.io.sandbox", str(self.cap_bytes),
                                       ",".join(preload)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      env=env, text=True, bufsize=1)
        ready = self._proc.stdout.readline()
        if ready.strip() != "ready":
            self.close()
            raise RuntimeError(f"the sandbox server did not start (said {ready!r})")

    def run(self, path, timeout_s: float | None = None, env: dict | None = None) -> Outcome:
        """Read ``path`` in a fresh child (``env``: variables set in it); never raises for anything the file does."""
        request = {"path": str(path), "timeout": self.timeout_s if timeout_s is None else float(timeout_s),
                   "env": dict(env or {})}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox server died")
        return Outcome(**json.loads(line))

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the server -----------------------------------------------------------------------------------
def _child(path: str, out_fd: int, err_file, env: dict) -> None:
    """Runs in the forked child: read the file, write one JSON result, exit without cleanup."""
    os.dup2(err_file.fileno(), 2)
    os.environ.update(env)
    start = time.perf_counter()
    try:
        from modgraph.errors import FormatError
        from modgraph.io import load
        try:
            net = load(path)
            widths = getattr(net, "widths", None)          # a LayeredNetwork; a DagNetwork has no widths
            result = {"kind": "ok", "message": f"widths {list(widths)}" if widths is not None
                      else f"a {type(net).__name__}"}
        except FormatError as err:
            result = {"kind": "refused", "message": str(err)}
        except MemoryError:
            import traceback
            result = {"kind": "memory", "message": traceback.format_exc()}
        except BaseException:             # noqa: BLE001 - anything else is the finding
            import traceback
            result = {"kind": "error", "message": traceback.format_exc()}
        result["seconds"] = time.perf_counter() - start
        sys.stderr.flush()
        data = json.dumps(result).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(out_fd, view):]
    finally:
        os._exit(0)


def _serve_one(request: dict) -> dict:
    timeout = request["timeout"]
    read_fd, write_fd = os.pipe()
    err_file = tempfile.TemporaryFile()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(request["path"], write_fd, err_file, request.get("env", {}))
    os.close(write_fd)
    chunks, hung = [], False
    while True:
        left = timeout - (time.perf_counter() - start)
        if left <= 0:
            hung = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if ready:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_fd)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    err_file.seek(0)
    stderr = err_file.read(_STDERR_KEEP).decode("utf-8", "replace")
    err_file.close()
    base = {"max_rss": int(usage.ru_maxrss) * 1024, "stderr": stderr}
    if hung:
        return {"kind": "hang", "message": f"killed after {timeout:g} s", "seconds": seconds, **base}
    try:
        result = json.loads(b"".join(chunks))
    except ValueError:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        name = signal.Signals(sig).name if sig else f"exit status {os.WEXITSTATUS(status)}"
        return {"kind": "crash", "message": f"the child died ({name}) without a result", "seconds": seconds, **base}
    return {**result, **base}


def _serve(cap_bytes: int, preload: list[str]) -> None:
    import importlib
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))
    importlib.import_module("modgraph.io")
    for name in preload:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(_serve_one(json.loads(line))), flush=True)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), [n for n in sys.argv[2].split(",") if n] if len(sys.argv) > 2 else [])
