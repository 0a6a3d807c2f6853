"""The ``modgraph-train`` command: parse, call public functions, print.

``modgraph-train boolean --task "[4,2,4]" --hidden 24,24 --seed 0 --out DIR [--grid]`` trains,
sculpts and exports one network; ``modgraph-train tasks`` lists the shipped tasks. Every
option is checked before anything runs, so a bad option writes nothing to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys

from modgraph.cli_args import add_seed, parser_kwargs, run_command
from trainers import clusterability_cli, cnn_cli, mnist_sculpt_cli
from trainers.cli_args import UsageError, check_out_folder, parse_steps, parse_widths

__all__ = ["main", "SUBCOMMANDS"]


def _check(args, name, ok, want: str) -> None:
    value = getattr(args, name)
    if value is not None and not ok(value):
        raise UsageError(f"--{name.replace('_', '-')}: expected {want}, found {value}")


def _config(args):
    """Everything validated into (task, widths, SculptConfig, config dict), before any work."""
    from trainers.config import dense_epoch_limit, task_train_config
    from trainers.sculpt import PE_GRID, PU_GRID, SculptConfig
    from trainers.tasks import load_task

    for name in ("lr", "epochs", "batch_size", "threads"):
        _check(args, name, lambda v: v > 0, "a positive number")
    for name in ("weight_decay", "noise"):
        _check(args, name, lambda v: v >= 0, "a number >= 0")
    _check(args, "gate", lambda v: 0 < v <= 1, "a fraction in (0, 1]")
    hidden = parse_widths(args.hidden)
    check_out_folder(args.out)
    task = load_task(args.task)
    if args.grid and (args.pu or args.pe):
        raise UsageError("--grid runs the spec's full (Pu, Pe) grid; drop --pu/--pe or drop --grid")
    pus = () if args.edge_only else PU_GRID if args.grid else parse_steps(args.pu or "10", "--pu")
    pes = PE_GRID if args.grid else parse_steps(args.pe or "0.5", "--pe")
    train_cfg = task_train_config(task, hidden, seed=args.seed, lr=args.lr, epochs=args.epochs,
                                  batch_size=args.batch_size, weight_decay=args.weight_decay, noise_std=args.noise)
    cfg = SculptConfig(train=train_cfg, gate=args.gate if args.gate is not None else 1.0, unit_steps=pus,
                       edge_steps=pes, threads=args.threads,
                       max_dense_epochs=dense_epoch_limit(task, hidden, seed=args.seed))
    widths = [task.n_inputs, *hidden, task.n_outputs]
    record = {"command": "boolean", "task": task.id, "task_name": task.name, "task_source": str(args.task),
              "hidden": hidden, "widths": widths, "seed": args.seed, "grid": bool(args.grid),
              "edge_only": bool(args.edge_only), "sculpt": cfg.to_dict()}
    return task, widths, cfg, record


def _cmd_boolean(args) -> int:
    task, widths, cfg, record = _config(args)
    from trainers.export import export_run
    from trainers.sculpt import sculpt_grid

    x, y = task.truth_table()
    result = sculpt_grid(x, y, widths, config=cfg, seed=args.seed, progress=not args.quiet)
    record["sculpt"] = {**record["sculpt"], "train": {**record["sculpt"]["train"], "epochs": result.epochs}}
    paths = export_run(result, task, args.out, config=record)
    print(f"{task.id} on {widths}, seed {args.seed}: accuracy {100 * result.accuracy:.2f} %, "
          f"{result.edges} edges (sparsity {result.sparsity:.2f} %), Pu={result.pu} Pe={result.pe}, "
          f"{sum(result.timings.values()):.1f} s")
    for kind, path in paths.items():
        print(f"  {kind:7s} {path}")
    return 0 if result.meets_gate else 1


def _cmd_demo(args) -> int:
    from trainers.demo import run_demo

    check_out_folder(args.out)
    return run_demo(args.out)


def _cmd_study_demo(args) -> int:
    from trainers.study_demo import run_study_demo

    check_out_folder(args.out)
    if args.workers < 1:
        raise UsageError(f"--workers: expected a positive number, found {args.workers}")
    return run_study_demo(args.out, workers=args.workers, progress=not args.quiet)


def _cmd_tasks(args) -> int:
    from trainers.tasks import list_tasks

    tasks = list_tasks()
    if args.json:
        print(json.dumps([{"id": t.id, "name": t.name, "aliases": t.spec.get("aliases", []),
                           "inputs": t.n_inputs, "outputs": t.n_outputs,
                           "description": t.spec.get("description", "")} for t in tasks], indent=2))
        return 0
    for t in tasks:
        print(f"{t.id:16s} {t.name:18s} {t.spec.get('description', '')}")
    return 0


def _add_boolean(sub) -> None:
    b = sub.add_parser("boolean", help="train, sculpt and export a network for a Boolean task", **parser_kwargs())
    b.add_argument("--task", required=True, help='a shipped task id or name ("[4,2,4]", "reused") or a spec file')
    b.add_argument("--hidden", default="24,24", help="hidden widths, comma-separated (default 24,24)")
    add_seed(b, "seed of initialisation, noise and shuffles")
    b.add_argument("--out", required=True, help="output folder (network.h5, network.onnx, config.json)")
    b.add_argument("--grid", action="store_true", help="search the full (Pu, Pe) grid of the spec, keep the sparsest")
    b.add_argument("--pu", help="unit-phase step(s) Pu in %% (comma-separated; default 10)")
    b.add_argument("--pe", help="edge-phase step(s) Pe in %% (comma-separated; default 0.5)")
    b.add_argument("--edge-only", action="store_true", help="skip unit pruning (the edge-only baseline)")
    b.add_argument("--lr", type=float, help="learning rate (default: the task's, else 0.05)")
    b.add_argument("--epochs", type=int, help="epochs per (re)training (default: the task's, else 15)")
    b.add_argument("--batch-size", type=int, help="minibatch size (default: the task's, else 32)")
    b.add_argument("--weight-decay", type=float, help="Adam weight decay (default 1e-4)")
    b.add_argument("--noise", type=float, help="std of the training-input noise (default 0.1)")
    b.add_argument("--gate", type=float, help="accuracy a pruning step must keep, in (0, 1] (default 1)")
    b.add_argument("--threads", type=int, default=1, help="torch threads (default 1: small nets are overhead-bound)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(run=_cmd_boolean)


def _add_tasks(sub) -> None:
    t = sub.add_parser("tasks", help="list the shipped tasks", **parser_kwargs())
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(run=_cmd_tasks)


def _add_demo(sub) -> None:
    d = sub.add_parser("demo", help="the main job on the embedded default (what `make demo` runs)", **parser_kwargs())
    d.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    d.set_defaults(run=_cmd_demo)


def _add_study_demo(sub) -> None:
    d = sub.add_parser("study-demo", help="one sculpted network through six exports, 3 methods x 3 seeds, "
                       "report.html (what `make study-demo` runs)", **parser_kwargs())
    d.add_argument("--out", default="out/study-demo", help="output folder (default out/study-demo)")
    d.add_argument("--workers", type=int, default=2, help="study worker processes (default 2)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(run=_cmd_study_demo)


#: The subcommands, in the order ``--help`` lists them: each adds its parser, whose ``run``
#: default is the function that carries it out, to the subparsers.
SUBCOMMANDS = (_add_boolean, _add_tasks, clusterability_cli.add_cli, cnn_cli.add_cli, mnist_sculpt_cli.add_cli,
               _add_demo, _add_study_demo)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="modgraph-train", description="Train and sculpt networks (Neural Sculpting).",
                                **parser_kwargs())
    sub = p.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return p


def main(argv=None) -> int:
    """Parse ``argv`` and run the subcommand; returns the exit code (``modgraph-train --help`` lists them)."""
    args = _parser().parse_args(argv)
    return run_command("modgraph-train", args)


if __name__ == "__main__":
    sys.exit(main())
