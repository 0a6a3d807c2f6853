"""``modgraph-train mnist-sculpt``: Neural Sculpting on MNIST two-digit task 1, exported for ``modgraph analyze``.

Kept apart from :mod:`trainers.mnist_sculpt` so that building the parser does not import torch.
Writes ``network.h5`` (metadata: task, ``modgraph-ground-truth`` JSON, config, history, grid,
gate, validation and test accuracy) and ``run.json`` (the same metadata) into ``--out``.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_cli", "run_cli", "export_mnist"]


def add_cli(sub) -> None:
    """Add the ``mnist-sculpt`` subcommand to ``modgraph-train``'s subparsers."""
    from modgraph.cli_args import add_seed, parser_kwargs

    c = sub.add_parser("mnist-sculpt", help="sculpt an MLP on MNIST two-digit task 1 and export it", **parser_kwargs())
    add_seed(c, "seed of data pairing, initialisation and shuffles")
    c.add_argument("--hidden", default="392,392", help="hidden widths (default 392,392)")
    c.add_argument("--pu", default="10", help="unit-phase step(s) Pu in %% (comma-separated; default 10)")
    c.add_argument("--pe", default="0.5", help="edge-phase step(s) Pe in %% (comma-separated; default 0.5)")
    c.add_argument("--gate-drop", type=float, default=0.005,
                   help="gate = dense validation per-bit accuracy minus this fraction (default 0.005)")
    c.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    c.add_argument("--epochs", type=int, default=40, help="epochs per (re)training (default 40)")
    c.add_argument("--batch-size", type=int, default=256, help="minibatch size (default 256)")
    c.add_argument("--per-class", type=int, default=1000, help="images per digit pair (default 1000, the spec's)")
    c.add_argument("--n-val", type=int, default=100, help="validation images per pair, taken from train (default 100)")
    c.add_argument("--data-dir", help="folder of the MNIST IDX files (default ../shared/data/mnist)")
    c.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 2 was 15x slower on the loaded 2-core box)")
    c.add_argument("--out", required=True, help="output folder (network.h5, run.json)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(run=run_cli)


def _config(args):
    from trainers.cli_args import UsageError, check_out_folder, parse_steps, parse_widths
    from trainers.mnist_sculpt import MnistSculptConfig
    from trainers.train import TrainConfig

    for name in ("lr", "epochs", "batch_size", "threads", "per_class"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')}: expected a positive number, found {getattr(args, name)}")
    if not 0 <= args.gate_drop < 1:
        raise UsageError(f"--gate-drop: expected a fraction in [0, 1), found {args.gate_drop}")
    check_out_folder(args.out)
    train = TrainConfig(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, noise_std=0.0)
    return parse_widths(args.hidden), MnistSculptConfig(train=train, gate_drop=args.gate_drop,
                                                        unit_steps=parse_steps(args.pu, "--pu"),
                                                        edge_steps=parse_steps(args.pe, "--pe"), threads=args.threads)


def export_mnist(result, info: dict, out_dir, *, config: dict) -> dict:
    """Write ``network.h5`` and ``run.json`` for a :func:`~trainers.mnist_sculpt.sculpt_mnist` result."""
    import torch

    from modgraph.io import atomic_path, save
    from trainers.export import to_network
    from trainers.mnist_sculpt import TASK_NAME, mnist_ground_truth

    gt, net = mnist_ground_truth(), result.net
    meta = {"producer": "trainers (modgraph-train mnist-sculpt)", "method": "neural-sculpting (arXiv 2305.18402)",
            "task": {"name": TASK_NAME, "id": "[1568,2,20]"}, "ground_truth": gt, "config": config,
            **info, "meets_gate": result.meets_gate,
            "selected": {"pu": result.pu, "pe": result.pe, "edges": result.edges, "sparsity": result.sparsity,
                         "units": result.net.units_alive().tolist()[0], "epochs": result.epochs},
            "pruning_history": result.history, "grid": result.grid, "timings": result.timings,
            "bias_masks": [net.bias(layer, net.mask)[0].to(torch.int64).tolist() for layer in range(len(net.slices))]}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"hdf5": out / "network.h5", "run": out / "run.json"}
    save(to_network(net, metadata=meta, input_names=gt["inputs"], output_names=gt["outputs"]), paths["hdf5"])
    with atomic_path(paths["run"]) as tmp:
        tmp.write_text(json.dumps({k: v for k, v in meta.items() if k != "ground_truth"}, indent=2) + "\n")
    return paths


def run_cli(args) -> int:
    """``modgraph-train mnist-sculpt``: check the options, build task 1, sculpt, export, print."""
    widths, cfg = _config(args)
    from trainers.mnist_sculpt import sculpt_mnist
    from trainers.tasks.mnist import two_digit_task

    task = two_digit_task(1, seed=args.seed, n_val=args.n_val, data_dir=args.data_dir, per_class=args.per_class)
    widths = [1568, *widths, 20]
    result, info = sculpt_mnist(task, widths, config=cfg, seed=args.seed, progress=not args.quiet)
    record = {"command": "mnist-sculpt", "widths": widths, "seed": args.seed, "per_class": args.per_class,
              "n_val": args.n_val, "sculpt": cfg.to_dict()}
    paths = export_mnist(result, info, args.out, config=record)
    print(f"mnist-task1 on {widths}, seed {args.seed}: gate {100 * info['gate']:.2f} % (dense val "
          f"{100 * info['dense_val_accuracy']:.2f} %), val {100 * result.accuracy:.2f} %, test "
          f"{100 * info['test_accuracy']:.2f} %, {result.edges} edges (sparsity {result.sparsity:.3f} %), "
          f"Pu={result.pu} Pe={result.pe}, {sum(result.timings.values()):.1f} s")
    for kind, path in paths.items():
        print(f"  {kind:7s} {path}")
    return 0 if result.meets_gate else 1
