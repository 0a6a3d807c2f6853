"""Stage lines for slow steps: silent when a step is quick, one line when it is not.

``StageLog("net.h5")`` is called with the name of each step as it starts; a step still running
after ``after`` seconds (2 by default) prints ``net.h5: detect (nested-sbm) ...`` on stderr, and
``... done in 54.1 s`` when the next step starts or the log is closed (used as a context
manager, a failing step ends silently). Lines go through
``tqdm.write`` so that they sit above a progress bar rather than through it.

Examples
--------
>>> import io, time
>>> buf = io.StringIO()
>>> log = StageLog("net.h5", after=0.05, stream=buf)
>>> log("load"); log("detect (sbm)"); time.sleep(0.2); log.close()
>>> buf.getvalue().splitlines()[0]
'net.h5: detect (sbm) ...'
"""
from __future__ import annotations

import sys
import threading
import time

__all__ = ["StageLog"]


class StageLog:
    """Announce a step that has run ``after`` seconds; say how long it took once it ends."""

    def __init__(self, label: str, *, after: float = 2.0, stream=None, enabled: bool = True):
        self.label, self.after, self.enabled = label, after, enabled
        self.stream = stream
        self._lock = threading.Lock()
        self._stage = self._timer = None
        self._start = 0.0
        self._announced = False

    def _write(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=self.stream or sys.stderr)
        (self.stream or sys.stderr).flush()

    def _announce(self, stage) -> None:
        with self._lock:
            if self._stage is stage:
                self._announced = True
                self._write(f"{self.label}: {stage} ...")

    def __call__(self, stage: str) -> None:
        self.close()
        if not self.enabled:
            return
        with self._lock:
            self._stage, self._start, self._announced = stage, time.perf_counter(), False
            self._timer = threading.Timer(self.after, self._announce, args=(stage,))
            self._timer.daemon = True
            self._timer.start()

    def __enter__(self) -> "StageLog":
        return self

    def __exit__(self, kind, err, tb) -> None:
        self.close(done=kind is None)

    def close(self, *, done: bool = True) -> None:
        """End the current step, printing its time if it was announced and ``done``; a step
        that failed or was interrupted (``done=False``) ends silently, its timer cancelled."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._announced and done:
                self._write(f"{self.label}: {self._stage} done in {time.perf_counter() - self._start:.1f} s")
            self._stage = self._timer = None
            self._announced = False
