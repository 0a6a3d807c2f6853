"""The ``modgraph`` command: parse, call public functions, print.

Everything it does can be done from Python; see README.md for the tour.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from modgraph.errors import ModgraphError

__all__ = ["main"]


def _cmd_info(args) -> int:
    from modgraph.io import load

    summaries = []
    for path in args.files:
        net = load(path)
        s = net.summary()
        s["file"] = str(path)
        summaries.append(s)
    if args.json:
        print(json.dumps(summaries if len(summaries) > 1 else summaries[0], indent=2))
        return 0
    for s in summaries:
        print(_format_dag_summary(s) if "groups" in s else _format_summary(s))
    return 0


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


def _parse_options(pairs) -> dict:
    opts = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects key=value, got {pair!r}")
        try:
            opts[key] = json.loads(value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def _cmd_analyze(args) -> int:
    import csv
    import io

    from tqdm import tqdm

    from modgraph.analyze import analyze_file, render_analysis, summary_row, write_files
    from modgraph.detect import DETECTORS
    from modgraph.report.text import format_analysis, format_table
    from modgraph.score import read_truth

    methods = args.method or ["sculpting"]
    unknown = [m for m in methods if m not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose one of {', '.join(sorted(DETECTORS))}")
    options = _parse_options(args.option)
    truth = read_truth(args.truth) if args.truth else None
    if len(args.files) * len(methods) > 1:            # several runs: the study engine (modgraph/cli_study.py)
        from modgraph.cli_study import cmd_analyze_many
        return cmd_analyze_many(args, methods, options)
    jobs = [(f, m) for f in args.files for m in methods]
    several = len(jobs) > 1
    results, rows, files = [], [], {}
    for path, method in tqdm(jobs, desc="analyze", unit="run", disable=len(jobs) < 2 or args.json):
        opts = {k.split(".", 1)[-1]: v for k, v in options.items() if "." not in k or k.startswith(method + ".")}
        a = analyze_file(path, method=method, seed=args.seed, truth=truth, **opts)
        results.append(a.to_dict())
        rows.append(summary_row(a))
        if args.out:
            sub = f"{Path(path).stem}-{method}/" if several else ""
            files.update({sub + name: data for name, data in render_analysis(a).items()})
        if not args.json:
            print(format_analysis(results[-1]) + "\n")
    if args.json:
        print(json.dumps(results if several else results[0], indent=1))
    elif several:
        print(format_table(rows))
    if args.out:                              # everything computed and rendered: now write
        if several:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
            writer.writeheader()
            writer.writerows(rows)
            files["summary.csv"] = buf.getvalue().encode()
        write_files(args.out, files)
        if not args.json:
            print(f"wrote {len(files)} files under {args.out}/: " + ("one folder per file and method "
                  "(analysis.json, network.png/.svg, modules.png/.svg) and summary.csv" if several
                  else "analysis.json, network.png/.svg, modules.png/.svg"))
    return 0


def _cmd_significance(args) -> int:
    from modgraph.io import load
    from modgraph.nulls import significance

    if args.k is not None and args.method != "spectral":
        raise ModgraphError(f"--k applies to --method spectral only, not {args.method!r}")
    options = {"k": 12 if args.k is None else args.k} if args.method == "spectral" else {}
    res = significance(load(args.file), method=args.method, null=args.null, n_shuffles=args.shuffles,
                       seed=args.seed, options=options, n_jobs=args.jobs, progress=True)
    print(res.table())
    stem = Path(args.out) / f"{Path(args.file).stem}-{args.method}-{args.null}"
    res.save_json(stem.with_suffix(".json"))
    res.save_histogram(stem.with_suffix(".png"))
    print(f"wrote {stem}.json and {stem}.png")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modgraph", description="Find the modules inside trained neural networks.")
    sub = p.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="summarise network files (any supported format)")
    info.add_argument("files", nargs="+", help="network files (.h5, .onnx, Keras .h5, .pt)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(run=_cmd_info)
    an = sub.add_parser("analyze", help="load, condense, detect modules, build the module DAG, score, report")
    an.add_argument("files", nargs="+", help="network files (any supported format)")
    an.add_argument("--method", nargs="+", help="detection method(s) (default: sculpting)")
    an.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    an.add_argument("--out", help="folder for analysis.json and the pictures (summary.csv for several runs)")
    an.add_argument("--truth", help="ground truth: a task spec (data/tasks/*.json) or ground-truth JSON")
    an.add_argument("--option", action="append", metavar="KEY=VALUE", help="method option, repeatable; METHOD.KEY=VALUE applies to one method only")
    an.add_argument("--json", action="store_true", help="print the analysis JSON instead of the summary")
    an.add_argument("--workers", type=int, default=1, help="worker processes for several runs (default 1)")
    an.set_defaults(run=_cmd_analyze)
    sig = sub.add_parser("significance", help="test a detector's statistic against shuffle nulls (p, z)")
    sig.add_argument("file", help="network file (any supported format)")
    sig.add_argument("--method", default="spectral", help="detector with a statistic (default spectral)")
    sig.add_argument("--k", type=int, help="number of clusters for spectral (default 12)")
    sig.add_argument("--shuffles", type=int, default=50, help="number of shuffles N (default 50)")
    sig.add_argument("--null", default="layer", help="layer or layer_nonzero (default layer)")
    sig.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sig.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    sig.add_argument("--out", default="out/significance", help="folder for the JSON and the histogram "
                     "(default out/significance)")
    sig.set_defaults(run=_cmd_significance)
    from modgraph.cli_study import add_subcommands
    add_subcommands(sub)                                  # study, export
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"modgraph {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ModgraphError, ValueError) as err:
        print(f"modgraph {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
