"""Comparative studies: many network files × methods × seeds → stored runs, tables, one report.

Map of the package::

    spec.toml ──read_spec──► StudySpec ──plan_runs──► [Run] ──engine.map(execute)──► results
        ──store_result (one folder per run, at once)──► runs/ ──write_tables / write_report──►
        runs.csv, runs.jsonl, report.html

- :mod:`modgraph.study.spec` — the TOML spec, run ids, content keys, derived seeds.
- :mod:`modgraph.study.runner` — ``execute``: one run, a worker's whole job (never raises).
- :mod:`modgraph.study.engines` — in-process, local process pool, Dask (any ``distributed.Client``).
- :mod:`modgraph.study.store` — the run folders and the tables rebuilt from them.
- :mod:`modgraph.study.driver` — ``run_study``: skip what is stored, run the rest, rebuild.
- :mod:`modgraph.study.summary`, :mod:`modgraph.study.html` — the report's numbers and page;
  :mod:`modgraph.study.picture` — its aggregated picture per network, bounded at any size.
- :mod:`modgraph.study.files` — ``modgraph analyze`` with several files: a study of files × methods.
- :mod:`modgraph.study.table` — ``analyze_many`` / ``success_table`` (rows in memory, for benchmarks).
"""
from modgraph.study.driver import Outcome, StudyFailed, run_study
from modgraph.study.spec import Run, StudySpec, parse_spec, plan_runs, read_spec
from modgraph.study.table import analyze_many, success_table

__all__ = ["run_study", "Outcome", "StudyFailed", "read_spec", "parse_spec", "plan_runs", "StudySpec", "Run",
           "analyze_many", "success_table"]
