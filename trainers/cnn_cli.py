"""``modgraph-train mnist-cnn`` and ``modgraph-train random-cnn``: the clusterability CNNs.

``mnist-cnn`` trains (and by default prunes) Filan et al.'s small CNN on MNIST and writes
``unpruned.onnx``/``.h5``, ``pruned.onnx``/``.h5`` and ``run.json``; ``random-cnn`` writes untrained
Glorot-uniform small CNNs or 13-conv VGGs, one ONNX and one modgraph HDF5 file per seed, without data. Kept apart
from :mod:`trainers.cnn_train` so that building the command's parser does not import torch.
Every option is checked before any work, so a bad option writes nothing.
"""
from __future__ import annotations

from trainers.cli_args import UsageError, check_out_folder

__all__ = ["add_cli", "run_mnist_cnn", "run_random_cnn"]


def _widths(text, flag: str, n: int):
    if text is None:
        return None
    try:
        widths = tuple(int(t) for t in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != n or min(widths) < 1:
        raise UsageError(f"{flag}: expected {n} comma-separated positive integers, found {text!r}")
    return widths


def add_cli(sub) -> None:
    """Add the ``mnist-cnn`` and ``random-cnn`` subcommands to ``modgraph-train``'s subparsers."""
    from modgraph.cli_args import add_seed

    c = sub.add_parser("mnist-cnn", help="train + prune Filan et al.'s small CNN on MNIST, export both phases")
    add_seed(c, "seed of initialisation, dropout and batch order")
    c.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    c.add_argument("--prune-epochs", type=int, default=10,
                   help="pruning epochs, 50 %% -> 90 %% per kernel (default 10; 0: no pruning, unpruned only)")
    c.add_argument("--dropout", action="store_true",
                   help="train with dropout (0.25 per conv block, 0.5 after dense; default none: the authors' control)")
    c.add_argument("--channels", help="the 3 conv widths, comma-separated (default 64,64,64)")
    c.add_argument("--dense", help="the dense width (default 128)")
    c.add_argument("--data-dir", help="folder of the MNIST IDX files (default ../shared/data/mnist)")
    c.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    c.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="where to train (default cpu; auto: cuda when torch sees a GPU). CUDA runs are seeded, "
                        "not bit-identical to CPU runs; the files are the same either way")
    c.add_argument("--out", required=True, help="output folder (unpruned.onnx/.h5, pruned.onnx/.h5, run.json)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(run=run_mnist_cnn)

    r = sub.add_parser("random-cnn", help="untrained Glorot-uniform small CNN or 13-conv VGG, ONNX + HDF5 per seed")
    r.add_argument("--arch", required=True, choices=("small-cnn", "vgg13"), help="architecture")
    r.add_argument("--seeds", default="0", help="seeds, comma-separated, or FIRST..LAST (default 0)")
    r.add_argument("--channels", help="conv widths, comma-separated (3 for small-cnn, 13 for vgg13)")
    r.add_argument("--dense", help="dense widths, comma-separated (1 for small-cnn, 2 for vgg13)")
    r.add_argument("--out", required=True, help="output folder ({arch}-seed{S}.onnx and .h5)")
    r.set_defaults(run=run_random_cnn)


def _seeds(text: str) -> list[int]:
    try:
        if ".." in text:
            first, last = (int(t) for t in text.split(".."))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(t) for t in text.split(",")]
    except ValueError:
        raise UsageError(f"--seeds: expected integers such as 0,1,2 or 0..5, found {text!r}") from None
    if not seeds:
        raise UsageError(f"--seeds: expected at least one seed, found {text!r}")
    return seeds


def run_mnist_cnn(args) -> int:
    """``modgraph-train mnist-cnn``: check the options, train, print the result."""
    if args.epochs < 1 or args.prune_epochs < 0 or args.threads < 1:
        raise UsageError("--epochs and --threads must be positive and --prune-epochs >= 0; found "
                         f"{args.epochs}, {args.threads}, {args.prune_epochs}")
    channels, dense = _widths(args.channels, "--channels", 3), _widths(args.dense, "--dense", 1)
    check_out_folder(args.out)
    import torch
    from tqdm import tqdm

    from trainers.cnn_train import CNNConfig, cnn_mnist, steps_per_phase, train_cnn
    from trainers.device import DeviceError, resolve_device

    try:
        device = resolve_device(args.device)
    except DeviceError as err:
        raise UsageError(f"--device: {err}") from None
    data = cnn_mnist(data_dir=args.data_dir)
    torch.set_num_threads(args.threads)
    cfg = CNNConfig(seed=args.seed, dropout=args.dropout, channels=channels, dense=dense,
                    epochs=args.epochs, prune_epochs=args.prune_epochs)
    per_epoch = steps_per_phase(len(data[0]), cfg) // cfg.epochs
    bar = tqdm(total=per_epoch * (cfg.epochs + cfg.prune_epochs), disable=args.quiet, desc="train", unit="step",
               mininterval=1)

    def step(phase, t, model):
        if bar.desc != phase:
            bar.set_description(phase, refresh=False)
        bar.update(1)

    rec = train_cnn(data, config=cfg, out_dir=args.out, on_step=step, device=device,
                    progress=lambda r: bar.set_postfix(epoch=r["epoch"], loss=f"{r['loss']:.4f}"))
    bar.close()
    pruned = (f", pruned {rec['test_accuracy_pruned']:.4f} (sparsity per kernel "
              f"{[round(s, 4) for s in rec['sparsity_per_layer']]})" if cfg.prune_epochs else "")
    print(f"test accuracy: unpruned {rec['test_accuracy_unpruned']:.4f}{pruned}; {rec['seconds']:.0f} s on {device}")
    for path in rec["files"]:
        print(f"  {path}")
    return 0


def run_random_cnn(args) -> int:
    """``modgraph-train random-cnn``: write one untrained network per seed."""
    n_conv, n_dense = (3, 1) if args.arch == "small-cnn" else (13, 2)
    channels, dense = _widths(args.channels, "--channels", n_conv), _widths(args.dense, "--dense", n_dense)
    seeds = _seeds(args.seeds)
    check_out_folder(args.out)
    from trainers.cnn_train import random_init_cnns

    for path in random_init_cnns(args.arch, seeds=seeds, out_dir=args.out, channels=channels, dense=dense):
        print(path)
    return 0
