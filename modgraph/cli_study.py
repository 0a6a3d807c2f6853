"""The ``modgraph study`` and ``modgraph export`` subcommands (kept out of ``cli.py``).

``add_subcommands(sub)`` registers both on the ``modgraph`` parser; each handler returns the
exit code (``modgraph.cli_args.EXIT_CODES``: 0 done, 1 a study that stored error rows, 2 a usage
or input error from ``cli.main``, 130 after Ctrl-C). Everything is checked (spec, inputs, ``--out``) before any
compute.
"""
from __future__ import annotations

from pathlib import Path

from modgraph.cli_args import add_seed, check_inputs, check_out_file, parse_methods, parser_kwargs

__all__ = ["add_subcommands", "cmd_study", "cmd_export", "cmd_analyze_many"]


def cmd_analyze_many(args, methods: list, options: dict, *, truth=None) -> int:
    """``modgraph analyze`` with several files or methods: an in-memory study
    (:func:`modgraph.study.files.analyze_files`) under ``--out``, else under a temporary folder.

    Every (file, method) run is kept (folders named by the path relative to the files' common
    folder), a bad file is an error row (exit 1, the others still reported), ``summary.csv`` and
    ``runs.csv`` are rebuilt from the stored runs, and a rerun with the same ``--out`` skips them.
    ``methods``, ``options`` (``METHOD.KEY``) and ``truth`` (a file) come checked from ``cli``.
    """
    import json
    import sys
    import tempfile
    from contextlib import nullcontext

    from modgraph.report.text import format_analysis, format_table
    from modgraph.study.files import analyze_files, stored_analysis, summary_rows

    if getattr(args, "workers", 1) < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    place = nullcontext(args.out) if args.out else tempfile.TemporaryDirectory(prefix="modgraph-analyze-")
    with place as out:
        outcome = analyze_files(args.files, methods, out, seed=args.seed, options=options, truth=truth,
                                workers=getattr(args, "workers", 1),
                                progress=not (args.json or getattr(args, "quiet", False)),
                                pictures=bool(args.out), view=None if args.view == "split" else args.view,
                                edge_norm=args.edge_norm)
        found = [(rec, stored_analysis(out, rec)) for rec in outcome.records]
    failed = [rec for rec, d in found if d is None]
    if args.json:
        print(json.dumps([d if d is not None else {
            "path": rec["path"], "method": rec["label"], "seed": rec["seed"], "status": "error",
            "error": rec["result"]["error"]} for rec, d in found], indent=1))
    else:
        for _, d in found:
            if d is not None:
                print(format_analysis(d) + "\n")
        short = ("file", "method", "seed", "units", "edges", "modules", "success", "status")
        print(format_table([{k: r.get(k, "") for k in short} for r in summary_rows(outcome.records)]))
    for rec in failed:
        print(f"modgraph analyze: {rec['path']} ({rec['label']}): {rec['result']['error']}", file=sys.stderr)
    if args.out and not args.json:
        print(f"{outcome.line()}\nper run: runs/<file>-<method>-<id>/ (analysis.json, network.png/.svg, "
              f"modules.png/.svg); tables: {Path(out) / 'summary.csv'}, runs.csv, runs.jsonl; "
              f"report: {Path(out) / 'report.html'}")
    if outcome.interrupted:
        return 130
    return 1 if failed else 0


def cmd_study(args) -> int:
    from modgraph.study import read_spec, run_study

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    spec = read_spec(args.spec)
    outcome = run_study(spec, args.out, workers=args.workers, dask=args.dask, fail_fast=args.fail_fast,
                        progress=not args.quiet)
    print(outcome.line())
    print(f"tables: {Path(args.out) / 'runs.csv'}, {Path(args.out) / 'runs.jsonl'}; "
          f"report: {Path(args.out) / 'report.html'}")
    if outcome.interrupted:
        return 130
    return 1 if outcome.errors else 0


def cmd_export(args) -> int:
    from modgraph.analyze import analyze_file
    from modgraph.export import FORMATS, export_analysis

    if args.to not in FORMATS:
        raise ValueError(f"unknown --to {args.to!r}; choose one of {', '.join(FORMATS)}")
    parse_methods([args.method])
    check_inputs([args.file])
    out = check_out_file(args.out)
    from modgraph.progress import StageLog

    with StageLog(Path(args.file).name) as log:
        a = analyze_file(args.file, method=args.method, seed=args.seed, progress=log, view=args.view,
                         edge_norm=args.edge_norm)
        log(f"write {args.to}")
        path = export_analysis(a, to=args.to, out=out)
    print(f"wrote {path}: {sum(a.graph.widths)} units, {a.partition.n_modules} modules "
          f"({args.method}, seed {args.seed}) as {args.to}")
    return 0


def add_subcommands(sub) -> None:
    """Register ``study`` and ``export`` on the ``modgraph`` subparsers object ``sub``."""
    st = sub.add_parser("study", help="run a study spec (TOML): files x methods x seeds, resumable, with a report",
                        **parser_kwargs())
    st.add_argument("spec", help="study spec, TOML (docs/study.md)")
    st.add_argument("--out", required=True, help="study folder: runs/, runs.csv, runs.jsonl, report.html; "
                    "a rerun skips the runs already stored there")
    st.add_argument("--workers", type=int, default=2, help="local worker processes (default 2; 1 = this process)")
    st.add_argument("--dask", metavar="local|tcp://HOST:PORT",
                    help="run on Dask: a loopback LocalCluster ('local') or an existing scheduler")
    st.add_argument("--fail-fast", action="store_true", help="stop at the first failing run")
    st.add_argument("--quiet", action="store_true", help="no progress bar")
    st.set_defaults(run=cmd_study)
    ex = sub.add_parser("export", help="write the unit graph and module labels as GraphML, GEXF or CSV",
                        **parser_kwargs())
    ex.add_argument("file", help="network file (any supported format)")
    ex.add_argument("--to", required=True, help="graphml, gexf or csv")
    ex.add_argument("--out", required=True, help="output file")
    ex.add_argument("--method", default="sculpting", help="detection method (default sculpting)")
    add_seed(ex)
    ex.add_argument("--view", choices=("split", "coupled", "filan"), default="split",
                    help="unit graph of a DAG (as for analyze; default split)")
    ex.add_argument("--edge-norm", dest="edge_norm", choices=("l1", "l2", "filan", "nnz"),
                    help="kernel slice -> edge weight (as for analyze)")
    ex.set_defaults(run=cmd_export)
