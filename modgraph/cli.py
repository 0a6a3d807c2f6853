"""The ``modgraph`` command: parse, call public functions, print.

Everything it does can be done from Python; see README.md for the tour. Every option, input
and ``--out`` is checked (:mod:`modgraph.cli_args`) before anything is computed; ``analyze``
writes its ``--out`` as a whole at the end (:mod:`modgraph.staging`); every failure is one line
on stderr with an exit code (``modgraph --help``).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from modgraph.cli_args import (EXIT_CODES, UsageError, add_seed, check_inputs, check_out_folder, methods_help,
                               parse_activations_option, parse_methods, parse_options, parser_kwargs,
                               run_command)
from modgraph.errors import AssumptionWarning, ModgraphError

__all__ = ["main"]


def _cmd_info(args) -> int:
    from modgraph.io import load
    from modgraph.progress import StageLog

    check_inputs(args.files)
    activations = parse_activations_option(args.activations)
    summaries = []
    for path in args.files:
        with StageLog(str(path)) as log, warnings.catch_warnings():
            warnings.simplefilter("ignore", AssumptionWarning)        # what was assumed is printed below
            log("load")
            net = load(path, activations=activations)
        s = net.summary(edge_norm=args.edge_norm or "l1") if hasattr(net, "groups") else net.summary()
        s["file"] = str(path)
        if net.metadata.get("assumed"):
            s["assumed"] = net.metadata["assumed"]
        if args.view or args.edge_norm:
            s["unit_graph"] = _unit_graph_summary(net, args.view or "split", args.edge_norm)
        summaries.append(s)
    if args.json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
        return 0
    for s in summaries:
        text = _format_dag_summary(s) if "groups" in s else _format_summary(s)
        if "unit_graph" in s:
            u = s["unit_graph"]
            text += (f"\n  unit graph, view {u['view']}, edge norm {u['edge_norm']}: {u['n_units']} units in "
                     f"{u['n_groups']} groups, {u['n_edges']} edges, "
                     + (f"{u['n_layers']} layers" if u["layered"] else "not layered"))
        print(text)
        for line in s.get("assumed", ()):
            print(f"  assumed: {line}")
    return 0


def _unit_graph_summary(net, view: str, edge_norm) -> dict:
    from modgraph.graph import build_unit_graph

    g = build_unit_graph(net, view=view, edge_norm=edge_norm)
    return {"view": g.view if g.is_dag else view, "edge_norm": g.edge_norm, "n_units": g.n_units,
            "n_edges": g.n_edges, "n_groups": len(set(g.group.tolist())) if g.is_dag else g.n_layers,
            "n_layers": g.n_layers, "layered": g.layered}


def _format_dag_summary(s: dict) -> str:
    by_type = ", ".join(f"{t} {n}" for t, n in s["edges_by_type"].items() if n)
    lines = [f"{s['file']}  [{s['source_format']}]",
             f"  {s['n_groups']} unit groups, {s['n_units']} units, {s['n_edges']} edges ({by_type or 'none'})",
             f"  {'group':<24} {'op':<14} {'kind':<6} {'units':>6} {'depth':>5} {'stage':>5} {'edges in':>9}"
             "  activation"]
    for r in s["groups"]:
        act = r["activation"] + (" (assumed)" if r["activation_assumed"] else "")
        lines.append(f"  {r['name']:<24} {r['op_type']:<14} {r['kind']:<6} {r['n_units']:>6} {r['depth']:>5} "
                     f"{r['stage']:>5} {r['n_edges_in']:>9}  {act}")
    return "\n".join(lines)


def _format_summary(s: dict) -> str:
    lines = [f"{s['file']}  [{s['source_format']}]",
             f"  widths {'-'.join(map(str, s['widths']))}: {s['n_units']} units, {s['n_edges']} edges "
             f"of {s['n_weights']} weights (sparsity {100 * s['sparsity']:.2f} %)",
             f"  {'layer':>5} {'n_in':>7} {'n_out':>7} {'edges':>9} {'density':>8}  activation"]
    for r in s["layers"]:
        lines.append(f"  {r['index']:>5} {r['n_in']:>7} {r['n_out']:>7} {r['n_edges']:>9} "
                     f"{100 * r['density']:>7.2f}%  {r['activation']}")
    return "\n".join(lines)


def _check_replaceable(out: Path) -> None:
    """An existing, non-empty ``--out`` is replaced only when it holds nothing but an earlier run's files."""
    from modgraph.analyze import OUTPUT_FILES

    if out.is_dir():
        strange = sorted(p.name for p in out.iterdir() if not (p.name in OUTPUT_FILES and p.is_file()))
        if strange:
            raise UsageError(f"--out: the folder {str(out)!r} holds files modgraph analyze did not write "
                             f"({', '.join(strange[:5])}); it would be replaced as a whole, so give a new "
                             "or empty folder")


def _truth_file(text) -> Path:
    """``--truth``: a file, or the spec file of a shipped task named by id, name or alias; read
    once here so that a bad one is refused before anything is computed."""
    from modgraph.score import read_truth
    from modgraph.tasks.shipped import task_file

    try:
        path = Path(text) if Path(text).exists() or Path(text).suffix.lower() == ".json" else task_file(text)
        read_truth(path)
    except (ModgraphError, ValueError) as err:
        raise UsageError(f"--truth {text}: {err}") from None
    return path


def _check_analyze(args):
    """Everything ``analyze`` needs, checked before anything is computed. With several runs
    (the study engine) a missing or unreadable file is an error row, and ``--out`` a study folder."""
    methods = parse_methods(args.method)
    options = parse_options(args.option, methods)
    several = len(args.files) * len(methods) > 1
    if several and args.workers < 1:
        raise UsageError(f"--workers: expected a positive number, found {args.workers}")
    if not several:
        check_inputs(args.files)
    truth = _truth_file(args.truth) if args.truth else None
    if several and args.activations is not None:
        raise UsageError("--activations is taken with one file and one method (several runs go through the "
                         "study engine, which does not take it yet)")
    activations = parse_activations_option(args.activations)
    if args.out:
        out = check_out_folder(args.out, parents=several)
        if not several:
            _check_replaceable(out)
    return methods, options, truth, activations, several


def _cmd_analyze(args) -> int:
    from modgraph.analyze import analyze_file, render_analysis, write_files
    from modgraph.progress import StageLog
    from modgraph.report.text import format_analysis
    from modgraph.score import read_truth
    from modgraph.staging import staged_folder

    methods, options, truth_file, activations, several = _check_analyze(args)
    if several:                                       # several runs: the study engine (modgraph/cli_study.py)
        from modgraph.cli_study import cmd_analyze_many
        flat = {f"{m}.{k}": v for m, opts in options.items() for k, v in opts.items()}
        return cmd_analyze_many(args, methods, flat, truth=truth_file)
    (path,), (method,) = args.files, methods
    truth = read_truth(truth_file) if truth_file else None
    if args.out:                   # matplotlib's import (seconds on a busy machine) is not the render step's time
        import matplotlib.figure  # noqa: F401
    with StageLog(f"{Path(path).name} {method}", enabled=not args.quiet) as log, warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)            # what was assumed is printed below
        a = analyze_file(path, method=method, seed=args.seed, truth=truth, progress=log, activations=activations,
                         view=args.view, edge_norm=args.edge_norm, **options[method])
        if args.out:                              # everything computed and rendered: now write
            log("render pictures")
            files = render_analysis(a)
            log("write")
            with staged_folder(args.out) as tmp:  # complete or absent: renamed into place at the end
                write_files(tmp, files)
    print(json.dumps(a.to_dict(), indent=1) if args.json else format_analysis(a.to_dict()) + "\n")
    if args.out and not args.json:
        print(f"wrote {len(files)} files under {args.out}/: analysis.json, network.png/.svg, modules.png/.svg")
    return 0


def _cmd_significance(args) -> int:
    from modgraph.io import load
    from modgraph.nulls import NULLS, STATISTICS, significance

    if args.method not in STATISTICS:
        raise UsageError(f"--method: expected a detector with a statistic ({', '.join(STATISTICS)}), "
                         f"found {args.method!r}")
    if args.null not in NULLS:
        raise UsageError(f"--null: expected one of {', '.join(NULLS)}, found {args.null!r}")
    if args.k is not None and args.method != "spectral":
        raise UsageError(f"--k applies to --method spectral only, not {args.method!r}")
    for name in ("shuffles", "jobs"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name}: expected a positive number, found {getattr(args, name)}")
    activations = parse_activations_option(args.activations)
    check_inputs([args.file])
    check_out_folder(args.out, parents=True)
    options = {"k": 12 if args.k is None else args.k} if args.method == "spectral" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)            # what was assumed is printed below
        net = load(args.file, activations=activations)
    for line in net.metadata.get("assumed", ()):
        print(f"assumed: {line}")
    res = significance(net, method=args.method, null=args.null, n_shuffles=args.shuffles,
                       seed=args.seed, options=options, n_jobs=args.jobs, progress=True, view=args.view,
                       edge_norm=args.edge_norm)
    print(res.table())
    stem = Path(args.out) / f"{Path(args.file).stem}-{args.method}-{args.null}"
    res.save_json(stem.with_suffix(".json"))
    res.save_histogram(stem.with_suffix(".png"))
    print(f"wrote {stem}.json and {stem}.png")
    return 0


_ACT_HELP = ("activations of a file that stores none (state dict, safetensors), one per layer, e.g. relu,relu,tanh "
             "(default: assumed relu between layers, identity at the end)")


def _graph_options(p, default_view="split") -> None:
    """--view and --edge-norm: which unit graph of a DAG (docs/dag.md, "Unit graphs and views")."""
    p.add_argument("--view", choices=("split", "coupled", "filan"), default=default_view,
                   help="unit graph of a DAG: split (default; every group a layer at its depth), coupled (residual "
                        "streams merged, not layered) or filan (conv->conv channel graph)")
    p.add_argument("--edge-norm", dest="edge_norm", choices=("l1", "l2", "filan", "nnz"),
                   help="kernel slice -> edge weight: l1 (default), l2, filan (matrix 1-norm; default of "
                        "--view filan) or nnz")


def _add_analyze(sub) -> None:
    an = sub.add_parser("analyze", help="load, condense, detect modules, build the module DAG, score, report",
                        **parser_kwargs(methods_help() + "\n\n" + EXIT_CODES))
    an.add_argument("files", nargs="+", help="network files (any supported format)")
    an.add_argument("--method", action="append", metavar="M[,M...]",
                    help="detection method(s): repeat the flag or give a comma list (default: sculpting)")
    add_seed(an)
    an.add_argument("--out", help="one run: folder for analysis.json and the pictures, written as a whole at "
                    "the end (complete or absent); several runs: a study folder (runs/, summary.csv, report.html)")
    an.add_argument("--truth", metavar="TASK|FILE", help='ground truth: a shipped task id or name ("[4,2,4]", '
                    '"both"), a task spec (data/tasks/*.json) or a ground-truth JSON')
    an.add_argument("--option", action="append", metavar="KEY=VALUE",
                    help="method option, repeatable; METHOD.KEY=VALUE applies to one method only (keys below)")
    an.add_argument("--json", action="store_true", help="print the analysis JSON instead of the summary")
    an.add_argument("--workers", type=int, default=1, help="worker processes for several runs (default 1)")
    an.add_argument("--quiet", action="store_true", help="no progress bar or stage lines")
    an.add_argument("--activations", metavar="A[,A...]", help=_ACT_HELP)
    _graph_options(an)
    an.set_defaults(run=_cmd_analyze)


def _add_significance(sub) -> None:
    sig = sub.add_parser("significance", help="test a detector's statistic against shuffle nulls (p, z)",
                         **parser_kwargs())
    sig.add_argument("file", help="network file (any supported format)")
    sig.add_argument("--method", default="spectral", help="detector with a statistic: spectral, sbm, nested-sbm, "
                     "modularity (default spectral)")
    sig.add_argument("--k", type=int, help="number of clusters for spectral (default 12)")
    sig.add_argument("--shuffles", type=int, default=50, help="number of shuffles N (default 50)")
    sig.add_argument("--null", default="layer", help="layer or layer_nonzero (default layer)")
    add_seed(sig)
    sig.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    sig.add_argument("--out", default="out/significance", help="folder for the JSON and the histogram "
                     "(default out/significance; made if missing)")
    sig.add_argument("--activations", metavar="A[,A...]", help=_ACT_HELP)
    _graph_options(sig)
    sig.set_defaults(run=_cmd_significance)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modgraph", description="Find the modules inside trained neural networks.",
                                **parser_kwargs())
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="summarise network files (any supported format)", **parser_kwargs())
    info.add_argument("files", nargs="+", help="network files (.h5, .onnx, Keras .h5, .pt)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument("--activations", metavar="A[,A...]", help=_ACT_HELP)
    _graph_options(info, default_view=None)
    info.set_defaults(run=_cmd_info)
    _add_analyze(sub)
    _add_significance(sub)
    from modgraph.cli_study import add_subcommands
    add_subcommands(sub)                                  # study, export
    return p


def main(argv=None) -> int:
    """Parse ``argv`` and run the subcommand; returns the exit code (``modgraph --help`` lists them)."""
    args = _parser().parse_args(argv)
    return run_command("modgraph", args)


if __name__ == "__main__":
    sys.exit(main())
