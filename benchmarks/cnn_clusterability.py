"""Clusterability of Filan et al.'s small CNN and the 13-conv VGG (``clusterability.md`` §5.3, §8.3, §8.4).

Stages written so far (each resumable where it trains; finished runs are skipped)::

    python benchmarks/cnn_clusterability.py train   [--seeds 0 1 2] [--conditions plain dropout] [--out DIR]
    python benchmarks/cnn_clusterability.py random  [--arch small-cnn vgg13] [--nets 6]
    python benchmarks/cnn_clusterability.py time    [--steps 200] [--threads 1]
    python benchmarks/cnn_clusterability.py random-ncut [--arch small-cnn vgg13] [--nets 6]

``train`` fits the small CNN on MNIST for each condition × seed (10 epochs, then 10 pruning epochs
to 90 % per kernel; condition ``plain`` = no dropout, the authors' "Control" whose numbers §8.4
quotes, the default; ``dropout`` = 0.25 per conv block and 0.5 after dense 128) and writes
``{cond}-seed{S}/unpruned.onnx``, ``…/pruned.onnx``, ``…/run.json`` and a summary ``train.json``
(test accuracy per run and phase, against the issue's 0.98 bar), beside each ``.onnx`` its modgraph
HDF5 ``.h5``. ``random`` writes untrained Glorot-uniform networks (``random/{arch}-seed{S}.onnx``
and ``.h5``) for the random-init calibration of §8.3. ``--out`` defaults to
``runs/cnn_clusterability``. ``time`` measures the wall time of ``--steps`` optimiser steps of the
full-size small CNN on real MNIST batches (training phase and pruning phase) and extrapolates the
cost of one full run and of ``--seeds`` runs; run it under ``nice -n 10``.
``random-ncut`` checks the random-init networks against §8.3 (k = 12): Filan et al.'s channel graph
(conv → conv blocks only; edge = numpy's matrix 1-norm of |K[o, i]|, the 3×3 slice; BN not folded,
which at init is a uniform gain) of a chain of convs is a chain of dense blocks, so it is built here
as a :class:`~modgraph.network.LayeredNetwork` of those blocks straight from the torch kernels and
cut by :func:`modgraph.detect.spectral.spectral`: a stand-in until the DAG reader's ``filan`` view
reads the ONNX files. The channel-graph analysis of the trained nets (n-cut against shuffles) needs
that view and is a later stage of this script.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ACCURACY_BAR = 0.98          # the acceptance: test accuracy >= 0.98, unpruned and pruned


CONDITIONS = {"plain": False, "dropout": True}


def train(args) -> None:
    import torch
    from tqdm import tqdm

    from trainers.cnn_train import CNNConfig, cnn_mnist, steps_per_phase, train_cnn

    torch.set_num_threads(args.threads)
    data = cnn_mnist()
    out, rows = Path(args.out), []
    for cond in args.conditions:
        for seed in args.seeds:
            folder = out / f"{cond}-seed{seed}"
            if not (folder / "run.json").exists():
                cfg = CNNConfig(seed=seed, dropout=CONDITIONS[cond], epochs=args.epochs, prune_epochs=args.epochs)
                total = steps_per_phase(len(data[0]), cfg) * 2
                bar = tqdm(total=total, desc=f"{cond} seed {seed}", file=sys.stdout, mininterval=5, unit="step")
                train_cnn(data, config=cfg, out_dir=folder, on_step=lambda phase, t, model: bar.update(1),
                          progress=lambda r: bar.set_postfix(phase=r["phase"], loss=f"{r['loss']:.4f}"))
                bar.close()
            rec = json.loads((folder / "run.json").read_text())
            rows.append({"condition": cond, "seed": seed, "unpruned": rec["test_accuracy_unpruned"],
                         "pruned": rec["test_accuracy_pruned"], "sparsity_per_layer": rec["sparsity_per_layer"],
                         "seconds": rec["seconds"], "folder": str(folder)})
            print(f"{cond} seed {seed}: test accuracy unpruned {rows[-1]['unpruned']:.4f}, "
                  f"pruned {rows[-1]['pruned']:.4f}, {rec['seconds']:.0f} s", flush=True)
    summary = {"runs": rows, "accuracy_bar": ACCURACY_BAR,
               "all_meet_bar": all(min(r["unpruned"], r["pruned"]) >= ACCURACY_BAR for r in rows)}
    (out / "train.json").write_text(json.dumps(summary, indent=2))
    print(f"all runs >= {ACCURACY_BAR}: {summary['all_meet_bar']}  ({out / 'train.json'})")


def random(args) -> None:
    from trainers.cnn_train import random_init_cnns

    for arch in args.arch:
        paths = random_init_cnns(arch, seeds=range(args.nets), out_dir=Path(args.out) / "random")
        print(f"{arch}: {args.nets} networks (.onnx + .h5) in {Path(paths[0]).parent}")


def _time_phase(model, x, y, cfg, *, prune: bool, gen) -> list[float]:
    from trainers.clusterability import run_phase

    stamps = [time.perf_counter()]
    run_phase(model, x, y, cfg, epochs=1, prune=prune, gen=gen, on_step=lambda t: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def time_steps(args) -> None:
    import torch

    from trainers.cnn import small_cnn
    from trainers.cnn_train import CNNConfig, cnn_mnist

    torch.set_num_threads(args.threads)
    cfg = CNNConfig(seed=0)
    x, y, _, _ = cnn_mnist()
    n = args.steps * cfg.batch_size
    x, y = torch.from_numpy(x[:n]), torch.from_numpy(y[:n])
    model = small_cnn(seed=0, dropout=True)           # the dearer condition
    t0 = time.perf_counter()
    train_s = _time_phase(model, x, y, cfg, prune=False, gen=torch.Generator().manual_seed(0))
    prune_s = _time_phase(model, x, y, cfg, prune=True, gen=torch.Generator().manual_seed(1))
    wall = time.perf_counter() - t0
    per_phase = math.ceil(60000 / cfg.batch_size) * cfg.epochs           # 9,380 steps per phase
    med_t, med_p = statistics.median(train_s), statistics.median(prune_s)
    mean_t, mean_p = sum(train_s) / len(train_s), sum(prune_s) / len(prune_s)
    run_h = (mean_t + mean_p) * per_phase / 3600
    print(f"small CNN (64-64-64, dense 128, with dropout), batch {cfg.batch_size}, {args.threads} torch thread(s), "
          f"{args.steps} steps per phase, {wall:.1f} s in all")
    print("| phase | median s/step | mean s/step | steps per full phase | extrapolated h |")
    print("|---|---|---|---|---|")
    print(f"| train | {med_t:.4f} | {mean_t:.4f} | {per_phase} | {mean_t * per_phase / 3600:.2f} |")
    print(f"| prune | {med_p:.4f} | {mean_p:.4f} | {per_phase} | {mean_p * per_phase / 3600:.2f} |")
    print(f"one full run (10 + 10 epochs, evaluation not counted): {run_h:.2f} h; "
          f"{len(args.seeds)} seeds: {run_h * len(args.seeds):.1f} h")


#: published random-init channel-graph n-cut, k = 12 (§8.3, 100 nets): mean, std
PUBLISHED_RANDOM = {"small-cnn": (10.923, 0.007), "vgg13": (8.520, 0.029)}


def channel_chain(model):
    """Filan et al.'s channel graph of a conv chain as a LayeredNetwork: block l = matrix 1-norms of conv l+1."""
    import numpy as np

    from modgraph.network import Layer, LayeredNetwork

    layers = []
    for conv in model.convs[1:]:
        k = np.abs(conv.weight.detach().double().numpy())               # (O, I, kh, kw)
        layers.append(Layer.from_dense(k.sum(axis=2).max(axis=2), activation="identity"))   # max column sum
    return LayeredNetwork(layers)


def random_ncut(args) -> None:
    import numpy as np

    from modgraph.detect.spectral import spectral
    from modgraph.graph import build_unit_graph
    from trainers.cnn import ARCHITECTURES

    print(f"| network | nets | units | n-cut k = 12 (mean ± std) | published | difference | s per net |")
    print("|---|---|---|---|---|---|---|")
    for arch in args.arch:
        build, _ = ARCHITECTURES[arch]
        cuts, t0 = [], time.perf_counter()
        for seed in range(args.nets):
            g = build_unit_graph(channel_chain(build(seed=seed)))
            cuts.append(spectral(g, k=12, seed=seed).stats["ncut"])
        v, (pub, pub_sd) = np.array(cuts), PUBLISHED_RANDOM[arch]
        print(f"| {arch} | {args.nets} | {g.n_units} | {v.mean():.3f} ± {v.std():.3f} | {pub:.3f} ± {pub_sd:.3f} | "
              f"{v.mean() - pub:+.3f} | {(time.perf_counter() - t0) / args.nets:.1f} |", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    t = sub.add_parser("train")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--conditions", nargs="+", default=["plain"], choices=list(CONDITIONS))
    r = sub.add_parser("random")
    r.add_argument("--arch", nargs="+", default=["small-cnn", "vgg13"], choices=["small-cnn", "vgg13"])
    r.add_argument("--nets", type=int, default=6)
    s = sub.add_parser("time")
    s.add_argument("--steps", type=int, default=200)
    n = sub.add_parser("random-ncut")
    n.add_argument("--arch", nargs="+", default=["small-cnn", "vgg13"], choices=["small-cnn", "vgg13"])
    n.add_argument("--nets", type=int, default=6)
    for q in (t, r, s, n):
        q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        q.add_argument("--out", default="runs/cnn_clusterability")
        q.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    {"train": train, "random": random, "time": time_steps, "random-ncut": random_ncut}[args.stage](args)


if __name__ == "__main__":
    main()
