"""Console-script entry points: Ctrl-C is one line and exit code 130 from the first line of modgraph code.

The ``modgraph`` command (and ``modgraph-train``, through :func:`run`) imports numpy, scipy, h5py,
graph-tool and, for ``modgraph-train``, torch: seconds in which a Ctrl-C would otherwise end in a
traceback, either a ``KeyboardInterrupt`` or an ``ImportError`` (C extensions such as numpy turn an
interrupt inside their own imports into one). So the entry point, before it imports the command's
module (``import modgraph`` itself imports nothing heavy, PEP 562), installs a SIGINT handler that
looks at the interrupted stack: inside an import it prints ``PROG: interrupted`` and exits with 130 at
once (nothing to clean up, and nothing can be trusted to have finished importing); anywhere else it
raises ``KeyboardInterrupt``, which the command turns into the same line after its own clean-up
(:func:`modgraph.cli_args.run_command`). An interrupt inside a lazy import in the middle of a run
exits at once too (an output folder is then absent, its staging folder may remain). Only the
interpreter's own start-up, before any modgraph code runs (tens of milliseconds), is outside its
reach.
"""
from __future__ import annotations

import _signal              # the C module, already loaded: the signal module's enums take milliseconds to build
import importlib
import os
import sys

__all__ = ["run", "modgraph"]

_INTERRUPTED = 130


def run(prog: str, target: str) -> int:
    """Call ``target`` (``"module:function"``, imported here) with SIGINT handled as described above."""
    def on_sigint(signum, frame):
        while frame is not None:
            if frame.f_code.co_filename.startswith("<frozen importlib"):       # inside an import
                try:
                    os.write(2, f"\n{prog}: interrupted\n".encode())
                finally:
                    os._exit(_INTERRUPTED)
            frame = frame.f_back
        raise KeyboardInterrupt

    _signal.signal(_signal.SIGINT, on_sigint)
    try:
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)()
    except KeyboardInterrupt:                       # while parsing, before the command's own handling
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return _INTERRUPTED


def modgraph() -> int:
    """The ``modgraph`` command."""
    return run("modgraph", "modgraph.cli:main")
