"""Run a study: plan, skip what is stored, execute the rest on an engine, store each result at
once, then rebuild the tables and the report from what is stored.

Examples
--------
>>> import pathlib, tempfile
>>> from modgraph.io import save
>>> from modgraph.testing import random_network
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> save(random_network([3, 4, 2], seed=0), d / "net.h5")
>>> spec = parse_spec({"inputs": [{"path": "net.h5"}], "methods": ["modularity"],
...                    "study": {"seeds": 2}}, base=d)
>>> first = run_study(spec, d / "out", report=False, progress=False)
>>> (first.planned, first.computed, first.skipped, first.errors)
(2, 2, 0, 0)
>>> again = run_study(spec, d / "out", report=False, progress=False)
>>> (again.computed, again.skipped)
(0, 2)
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modgraph.errors import ModgraphError
from modgraph.io import atomic_path
from modgraph.study.engines import make_engine
from modgraph.study.runner import execute
from modgraph.study.spec import StudySpec, parse_spec, plan_runs, read_spec
from modgraph.study.store import clear_partials, finished, load_result, store_result, write_tables

__all__ = ["Outcome", "run_study", "check_out", "StudyFailed", "parse_spec"]


class StudyFailed(ModgraphError):
    """A run failed and the study was asked to stop at the first failure (``fail_fast``)."""


@dataclass
class Outcome:
    """What a call of :func:`run_study` did, and where the results are."""

    out: Path
    planned: int
    skipped: int
    computed: int
    errors: int
    interrupted: bool
    records: list

    def line(self) -> str:
        state = "interrupted" if self.interrupted else "done"
        stored = len(self.records)
        return (f"{state}: {stored} of {self.planned} runs stored ({self.skipped} already stored, "
                f"{self.computed} computed now, {self.errors} errors) under {self.out}/")


def check_out(out) -> Path:
    """Make ``out`` (and ``out/runs``) and prove it writable, before any compute."""
    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ModgraphError(f"cannot write to --out {out}: {err.strerror or err}") from None
    return out


def _bar(total, progress):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="study", unit="run", disable=not progress)


def _save_plan(out: Path, spec: StudySpec, runs) -> None:
    doc = {"spec": spec.source, "root": str(spec.root), "name": spec.name, "runs": len(runs),
           "run_ids": [r.run_id for r in runs]}
    with atomic_path(out / "study.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=1))


def _execute(engine, out, todo, *, fail_fast, progress) -> tuple[int, int]:
    computed = errors = 0
    bar = _bar(len(todo), progress)
    try:
        for i, res in engine.map(execute, [r.to_task() for r in todo]):
            store_result(out, todo[i], res)
            computed += 1
            bar.update()
            if res["result"]["status"] == "error":
                errors += 1
                if fail_fast:
                    raise StudyFailed(f"run {todo[i].run_id} failed: {res['result']['error']} "
                                      f"(--fail-fast; {computed} runs stored, rerun to go on)")
    finally:
        bar.close()
    return computed, errors


def run_study(spec, out, *, workers: int = 2, dask: str | None = None, client=None, fail_fast: bool = False,
              report: bool = True, progress: bool = True) -> Outcome:
    """Run every run of ``spec`` (a :class:`StudySpec` or a TOML path) not yet stored under ``out``.

    ``client``: a ``distributed.Client`` of your own (SLURM, Kubernetes, ...); ``dask``: 'local'
    (a loopback ``LocalCluster``) or 'tcp://host:port'; otherwise a process pool of ``workers``
    (in this process when 1). Ctrl-C stops cleanly: the tables cover what is stored.
    """
    spec = spec if isinstance(spec, StudySpec) else read_spec(spec)
    out = check_out(out)
    runs = plan_runs(spec)
    clear_partials(out)
    done = finished(out, runs)
    todo = [r for r in runs if r.run_id not in done]
    _save_plan(out, spec, runs)
    computed = errors = 0
    interrupted = False
    engine = make_engine(workers=workers, dask=dask, client=client) if todo else None
    try:
        if engine is not None:
            computed, errors = _execute(engine, out, todo, fail_fast=fail_fast, progress=progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if engine is not None:
            engine.close()
        records = [rec for r in runs if (rec := load_result(out, r)) is not None]
        write_tables(out, records)
        if report:
            from modgraph.study.html import write_report
            write_report(out, records, planned=len(runs), name=spec.name)
    return Outcome(out, len(runs), len(done), computed, errors + sum(
        rec["result"]["status"] == "error" for rec in done.values()), interrupted, records)
