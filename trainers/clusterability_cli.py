"""``modgraph-train mnist-clusterability``: the clusterability MNIST MLP from the command line.

Kept apart from :mod:`trainers.clusterability` so that building the command's parser does
not import torch.
"""
from __future__ import annotations

__all__ = ["add_cli", "run_cli"]


def add_cli(sub) -> None:
    """Add the ``mnist-clusterability`` subcommand to ``modgraph-train``'s subparsers."""
    from modgraph.cli_args import add_seed, parser_kwargs

    c = sub.add_parser("mnist-clusterability", help="train + prune the clusterability MNIST MLP, export both phases",
                       **parser_kwargs())
    add_seed(c, "seed of initialisation and shuffles")
    c.add_argument("--dropout", type=float, default=0.0, help="dropout after each hidden layer (0.5 in P2; default 0)")
    c.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    c.add_argument("--prune-epochs", type=int, default=20, help="pruning epochs, 50 %% -> 90 %% (default 20)")
    c.add_argument("--data-dir", help="folder of the MNIST IDX files (default ../shared/data/mnist)")
    c.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    c.add_argument("--out", required=True, help="output folder (unpruned.h5/.onnx, pruned.h5/.onnx, run.json)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(run=run_cli)


def run_cli(args) -> int:
    """``modgraph-train mnist-clusterability``: check the options, train, print the result."""
    import torch
    from tqdm import tqdm

    from modgraph.errors import ModgraphError
    from trainers.cli_args import check_out_folder
    from trainers.clusterability import ClusterabilityConfig, train_clusterability
    from trainers.tasks.mnist import clusterability_mnist

    if not 0.0 <= args.dropout < 1.0 or args.epochs < 1 or args.prune_epochs < 1 or args.threads < 1:
        raise ModgraphError("--dropout must be in [0, 1) and --epochs, --prune-epochs, --threads positive; found "
                            f"{args.dropout}, {args.epochs}, {args.prune_epochs}, {args.threads}")
    check_out_folder(args.out)
    data = clusterability_mnist(data_dir=args.data_dir)
    torch.set_num_threads(args.threads)
    cfg = ClusterabilityConfig(seed=args.seed, dropout=args.dropout, epochs=args.epochs,
                               prune_epochs=args.prune_epochs)
    bar = tqdm(total=cfg.epochs + cfg.prune_epochs, disable=args.quiet, desc="epochs")
    rec = train_clusterability(data, config=cfg, out_dir=args.out,
                               progress=lambda r: (bar.update(1), bar.set_postfix(phase=r["phase"], loss=r["loss"])))
    bar.close()
    print(f"test accuracy: unpruned {rec['test_accuracy_unpruned']:.4f}, pruned {rec['test_accuracy_pruned']:.4f}; "
          f"sparsity per layer {[round(s, 4) for s in rec['sparsity_per_layer']]}; {rec['seconds']:.0f} s")
    for path in rec["files"]:
        print(f"  {path}")
    return 0
