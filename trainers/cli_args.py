"""What the ``modgraph-train`` subcommands share: the usage error and the checks of their options.

:mod:`trainers.cli` (the command and its registry of subcommands) and each subcommand module
(:mod:`trainers.mnist_sculpt_cli`, ...) import these; no subcommand imports :mod:`trainers.cli`.

Examples
--------
>>> parse_widths("24,24"), parse_steps("10,0.5", "--pu")
([24, 24], (10.0, 0.5))
>>> parse_steps("100", "--pe")
Traceback (most recent call last):
...
trainers.cli_args.UsageError: --pe: every step must be a percentage in (0, 100), found '100'
"""
from __future__ import annotations

from modgraph import cli_args as _shared

__all__ = ["UsageError", "parse_widths", "parse_steps", "check_out_folder"]


class UsageError(_shared.UsageError):
    """A command-line value that cannot be used (the ``modgraph`` commands' kind, named here)."""


def parse_widths(text: str) -> list[int]:
    """``--hidden``: comma-separated positive integers."""
    try:
        widths = [int(t) for t in text.split(",")]
    except ValueError:
        raise UsageError(f"--hidden: expected comma-separated positive integers such as 24,24, found {text!r}") from None
    if not widths or min(widths) < 1:
        raise UsageError(f"--hidden: every width must be a positive integer, found {text!r}")
    return widths


def parse_steps(text: str, flag: str) -> tuple[float, ...]:
    """``--pu`` / ``--pe`` (named by ``flag``): comma-separated percentages in (0, 100)."""
    try:
        steps = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise UsageError(f"{flag}: expected comma-separated percentages in (0, 100), found {text!r}") from None
    if not all(0.0 < s < 100.0 for s in steps):
        raise UsageError(f"{flag}: every step must be a percentage in (0, 100), found {text!r}")
    return steps


def check_out_folder(out: str) -> None:
    """``--out`` may be missing (it is made, with missing parents) or a folder, not a file, and
    must be writable: checked before any training, so a bad ``--out`` costs nothing."""
    try:
        _shared.check_out_folder(out, parents=True)
    except _shared.UsageError as err:
        raise UsageError(str(err)) from None
