"""What the ``modgraph`` and ``modgraph-train`` commands share: exit codes, the one seed default,
the checks of ``--out``, ``--method`` and ``--option``, and the wrapper that turns every error
into one line.

Everything here runs before any compute, so a bad command line costs nothing and writes nothing.

Examples
--------
>>> parse_methods(["sbm,modularity", "sbm"])
['sbm', 'modularity']
>>> parse_options(["k=4", "sculpting.theta=0.5"], ["spectral", "sculpting"])
{'spectral': {'k': 4}, 'sculpting': {'theta': 0.5}}
>>> parse_options(["spectral.clusters=4"], ["spectral"])
Traceback (most recent call last):
...
modgraph.cli_args.UsageError: --option spectral.clusters=4: method 'spectral' has no option 'clusters'; its options are: k (int, default 12), n_init (int | None, default None), solver (str, default 'auto'), dense_limit (int, default 5000)
"""
from __future__ import annotations

import errno
import os
import sys
import tempfile
import typing
from pathlib import Path

from modgraph.errors import ModgraphError

__all__ = ["DEFAULT_SEED", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_INTERRUPTED", "EXIT_BROKEN_PIPE",
           "EXIT_CODES", "UsageError", "add_seed", "check_out_folder", "check_out_file", "parse_methods",
           "parse_options", "parse_activations_option", "methods_help", "run_command", "check_inputs",
           "parser_kwargs"]

#: The ``--seed`` default of every command of ``modgraph`` and ``modgraph-train``.
DEFAULT_SEED = 0

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

#: The exit codes, as ``--help`` and ``docs/analysis.md`` state them.
EXIT_CODES = """exit codes:
  0    done
  1    ran, but the result misses its gate (modgraph-train) or a study stored error rows
  2    bad command line, option, input file or --out, or a read/write error: one line on
       stderr, and nothing written to --out
  130  interrupted (Ctrl-C); --out is left complete or absent
  141  the output pipe was closed (e.g. `| head`)"""


class UsageError(ModgraphError, ValueError):
    """A command-line value that cannot be used."""


def parser_kwargs(epilog: str = EXIT_CODES) -> dict:
    """``epilog`` and the formatter that keeps its lines, for every (sub)parser."""
    import argparse

    return {"epilog": epilog, "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_seed(parser, what: str = "random seed") -> None:
    """The ``--seed`` option, with the shared default."""
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"{what} (default {DEFAULT_SEED})")


def _probe_writable(folder: Path, flag: str, out) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".modgraph-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UsageError(f"{flag}: cannot write in {str(folder)!r}: {err.strerror or err}") from None


def _folder_for(out: Path, flag: str, *, parents: bool) -> Path:
    """The existing folder that will hold the new ``out`` (its parent, or any ancestor when ``parents``)."""
    above = out.absolute().parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise UsageError(f"{flag}: {str(out)!r} is inside the file {str(above)!r}, not a folder")
    if above != out.absolute().parent and not parents:
        raise UsageError(f"{flag}: the folder {str(out.parent)!r} does not exist (create it first)")
    _probe_writable(above, flag, out)
    return above


def check_out_folder(out, *, flag: str = "--out", parents: bool = False) -> Path:
    """``out`` must be a folder or not exist yet, inside an existing folder (any existing ancestor
    when ``parents``: the missing ones will be made), and writable.

    Nothing is created; the folder that will hold ``out`` (or ``out`` itself when it exists) is
    probed with a temporary file.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag}: expected a folder, found the file {str(out)!r}")
    if out.is_dir():
        _probe_writable(out, flag, out)
    else:
        _folder_for(out, flag, parents=parents)
    return out


def check_out_file(out, *, flag: str = "--out") -> Path:
    """``out`` is a file to write: not a folder, in an existing writable folder."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"{flag}: expected a file name, found the folder {str(out)!r}")
    _folder_for(out, flag, parents=False)
    return out


def parse_methods(values, default: str = "sculpting") -> list[str]:
    """``--method`` values (repeated flags, comma lists or both) → known method names, in order, once."""
    from modgraph.detect import DETECTORS

    methods = list(dict.fromkeys(m.strip() for v in values or () for m in v.split(",") if m.strip()))
    for m in methods:
        if m not in DETECTORS:
            raise UsageError(f"--method: unknown method {m!r}; choose one of {', '.join(sorted(DETECTORS))}")
    return methods or [default]


def _coerce(text: str, kind):
    """The text of an option value, read as the type the detector declares."""
    allowed = typing.get_args(kind) or (kind,)
    if type(None) in allowed and text.lower() in ("none", "null"):
        return None
    for a in allowed:
        if a is bool and text.lower() in ("true", "false", "1", "0"):
            return text.lower() in ("true", "1")
        if a in (int, float):
            try:
                return a(text)
            except ValueError:
                continue
        if a is str:
            return text
    return text                                       # check_options names the expected type


def parse_options(pairs, methods) -> dict[str, dict]:
    """``--option KEY=VALUE`` / ``METHOD.KEY=VALUE`` → {method: {key: value}}, checked against
    each method's declared options. A plain key goes to every chosen method that has it and must
    fit at least one; ``METHOD.KEY`` goes to that method only, which must be chosen."""
    from modgraph.detect import check_options, describe_options, method_options

    per = {m: {} for m in methods}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option expects KEY=VALUE or METHOD.KEY=VALUE, found {pair!r}")
        scope, dot, name = key.rpartition(".")
        targets = [scope] if dot else [m for m in methods if name in method_options(m)]
        if dot and scope not in per:
            raise UsageError(f"--option {pair}: method {scope!r} is not among --method ({', '.join(methods)})")
        if not targets:
            valid = "; ".join(f"{m}: {describe_options(m)}" for m in methods)
            raise UsageError(f"--option {pair}: no chosen method has an option {name!r}; valid options are {valid}")
        for m in targets:
            known = method_options(m)
            value = _coerce(text, known[name][0]) if name in known else text
            try:
                check_options(m, {name: value})
            except ValueError as err:
                raise UsageError(f"--option {pair}: {err}") from None
            per[m][name] = value
    return per


def parse_activations_option(text):
    """``--activations relu,tanh,...`` (of ``info``, ``analyze``, ``significance``) as a list, None when
    not given; names checked here, before anything is read (their count, one per layer, is checked
    by the reader, which knows the layers).

    >>> parse_activations_option("relu, tanh")
    ['relu', 'tanh']
    >>> parse_activations_option(None) is None
    True
    >>> parse_activations_option("relu,swish")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    modgraph.cli_args.UsageError: --activations: expected comma-separated names from elu, gelu, ..., got 'relu,swish'
    """
    from modgraph.io.state_chain import parse_activations

    try:
        return parse_activations(text)
    except ValueError as err:
        raise UsageError(str(err)) from None


def methods_help() -> str:
    """One line per method with its options, for ``--help``."""
    from modgraph.detect import DETECTORS, describe_options

    import textwrap

    return "methods and their --option keys:\n" + "\n".join(
        textwrap.fill(f"{m}: {describe_options(m)}", width=96, initial_indent="  ", subsequent_indent="      ")
        for m in sorted(DETECTORS))


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and not isinstance(err, ModgraphError):
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror or errno.errorcode.get(err.errno, '') or err}"
    return " ".join(str(err).split()) or type(err).__name__          # all of it, on one line


def run_command(prog: str, args) -> int:
    """Run ``args.run(args)``; every expected failure becomes one line on stderr and an exit code
    (:data:`EXIT_CODES`): errors of ours, ``ValueError``, ``OSError``, Ctrl-C, a closed pipe."""
    where = f"{prog} {args.command}"
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"\n{where}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        try:                                       # no second BrokenPipeError when Python flushes at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_BROKEN_PIPE
    except MemoryError:
        print(f"{where}: error: out of memory", file=sys.stderr)
        return EXIT_USAGE
    except (ModgraphError, ValueError, OSError) as err:
        print(f"{where}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE


def check_inputs(files) -> None:
    """Every input is an existing, readable regular file (its content is the readers' business)."""
    for f in files:
        path = Path(f)
        if not path.exists():
            raise UsageError(f"{path}: no such file")
        if not path.is_file():
            raise UsageError(f"{path}: expected a network file, found a {'folder' if path.is_dir() else 'special file'}")
        try:
            with open(path, "rb") as fh:
                fh.read(1)
        except OSError as err:
            raise UsageError(f"{path}: cannot read: {err.strerror or err}") from None
