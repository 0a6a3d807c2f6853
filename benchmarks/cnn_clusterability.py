"""Clusterability of Filan et al.'s small CNN and the 13-conv VGG (``clusterability.md`` §5.3, §8.3, §8.4).

Stages (each resumable where it trains; finished runs are skipped)::

    python benchmarks/cnn_clusterability.py train   [--seeds 0 1 2] [--conditions plain dropout] [--out DIR]
                                                    [--device cpu|cuda|auto] [--jobs N] [--threads T]
    python benchmarks/cnn_clusterability.py analyze [--seeds 0 1 2] [--shuffles 50] [--k 12] [--results docs/results.md]
                                                    [--jobs N]
    python benchmarks/cnn_clusterability.py trained [--seeds 0 1 2] [--shuffles 50] [--results docs/results.md]
                                                    [--device ...] [--jobs N] [--threads T]
    python benchmarks/cnn_clusterability.py random  [--arch small-cnn vgg13] [--nets 6]
    python benchmarks/cnn_clusterability.py random-ncut [--arch small-cnn vgg13] [--nets 6] [--results docs/results.md]
    python benchmarks/cnn_clusterability.py time    [--steps 200] [--threads 1] [--device cpu|cuda|auto]

``train`` fits the small CNN on MNIST for each condition × seed (10 epochs, then 10 pruning epochs
to 90 % per kernel; condition ``plain`` = no dropout, the authors' "Control" whose numbers §8.4
quotes, the default; ``dropout`` = 0.25 per conv block and 0.5 after dense 128) and writes
``{cond}-seed{S}/unpruned.onnx``, ``…/pruned.onnx``, ``…/run.json`` and a summary ``train.json``
(test accuracy per run and phase, against the issue's 0.98 bar), beside each ``.onnx`` its modgraph
HDF5 ``.h5``. ``analyze`` loads each run's ``.h5`` and tests the n-cut of its channel graph
(``view="filan"``, ``edge_norm="filan"``, k = 12) against ``--shuffles`` `layer` shuffles within each
conv → conv block (:func:`modgraph.nulls.significance`), printing n-cut, null mean, z and p per seed and
phase beside the published numbers, and writes ``analysis.json``. ``trained`` is ``train`` then
``analyze``: the whole trained-CNN result in one command (about 1 h of CPU per run on one core:
``time`` measures it). ``--device`` (``train``, ``trained``, ``time``; default ``cpu``) trains there
(:mod:`trainers.device`: ``auto`` = ``cuda`` when torch sees a GPU; CUDA runs are seeded but not
bit-identical to CPU runs; the files are the same); ``--device cuda`` without CUDA stops at once with
one line and exit 2. ``--jobs N`` trains N (condition, seed) runs at once, each in its own spawned
process with ``--threads`` torch threads (a line per epoch instead of progress bars; the runs are the
same as one by one), and ``analyze`` gives each significance test N shuffle workers.
``--train-subset K`` trains on the first K training images only: for tests and smoke runs
(``benchmarks/device_cnn.sh``), not the published setting (``run.json`` records ``n_train``). ``random`` writes untrained Glorot-uniform networks
(``random/{arch}-seed{S}.onnx`` and ``.h5``) for the random-init calibration of §8.3.
``random-ncut`` (writes the networks it lacks first) loads each ``.h5``, builds the filan view under
each edge norm (l1, l2, filan = numpy's matrix 1-norm of |K[o, i]| as Filan et al.'s code, nnz) and
cuts it with :func:`modgraph.detect.spectral.spectral` at k = 12, against the published means.
``--out`` defaults to ``runs/cnn_clusterability``; ``--results`` puts the table into its section of
that file. Run the stages under ``nice -n 10``. :func:`channel_chain` (the channel graph built
straight from the torch kernels) is kept as an independent cross-check of the filan view.
The speed of the null test against scikit-learn: ``benchmarks/cnn_significance_perf.py``.
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
DEVICES = ("cpu", "cuda", "auto")


def _check_args(parser, args) -> None:
    """Refuse, before any work, what cannot run: one line on stderr, exit 2 (argparse's way)."""
    for name in ("jobs", "threads", "train_subset"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, found {value}")
    if getattr(args, "device", "cpu") != "cpu":
        from trainers.device import DeviceError, resolve_device

        try:
            resolve_device(args.device)
        except DeviceError as err:
            print(f"{parser.prog}: error: --device: {err}", file=sys.stderr)
            raise SystemExit(2) from None


def _run_config(args, cond: str, seed: int):
    from trainers.cnn_train import CNNConfig

    return CNNConfig(seed=seed, dropout=CONDITIONS[cond], epochs=args.epochs, prune_epochs=args.epochs)


def _subset(data, k):
    """The first ``k`` training images (``--train-subset``: tests and smoke runs, not the published setting)."""
    x, y, xt, yt = data
    return data if k is None else (x[:k], y[:k], xt, yt)


def _train_here(args, data, cond, seed, folder) -> None:
    """One run in this process, with a progress bar."""
    from tqdm import tqdm

    from trainers.cnn_train import steps_per_phase, train_cnn

    cfg = _run_config(args, cond, seed)
    bar = tqdm(total=steps_per_phase(len(data[0]), cfg) * 2, desc=f"{cond} seed {seed}", file=sys.stdout,
               mininterval=5, unit="step")
    train_cnn(data, config=cfg, out_dir=folder, device=args.device, on_step=lambda phase, t, model: bar.update(1),
              progress=lambda r: bar.set_postfix(phase=r["phase"], loss=f"{r['loss']:.4f}"))
    bar.close()


_WORKER = {}


def _init_worker(data, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER["data"] = data


def _train_job(args, cond: str, seed: int, folder: str) -> str:
    """One run in a worker process (``--jobs``): a line per epoch instead of a bar."""
    from trainers.cnn_train import train_cnn

    t0, name = time.perf_counter(), f"{cond} seed {seed}"

    def epoch(r):
        total = args.epochs
        print(f"{name}: {r['phase']} epoch {r['epoch']}/{total} loss {r['loss']:.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    train_cnn(_WORKER["data"], config=_run_config(args, cond, seed), out_dir=folder, device=args.device,
              progress=epoch)
    return folder


def _train_all(args, data, todo) -> None:
    """Train the missing (condition, seed) runs: here one by one, or in ``--jobs`` spawned processes."""
    if args.jobs <= 1 or len(todo) <= 1:
        for cond, seed, folder in todo:
            _train_here(args, data, cond, seed, folder)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    n = min(args.jobs, len(todo))
    print(f"training {len(todo)} runs in {n} processes x {args.threads} torch thread(s) on {args.device}", flush=True)
    with ProcessPoolExecutor(n, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(data, args.threads)) as pool:
        futures = [pool.submit(_train_job, args, cond, seed, str(folder)) for cond, seed, folder in todo]
        for future in as_completed(futures):
            future.result()                     # a failed run stops the stage with its own error


def train(args) -> None:
    import torch

    from trainers.cnn_train import cnn_mnist

    torch.set_num_threads(args.threads)
    data = _subset(cnn_mnist(), args.train_subset)
    out, rows = Path(args.out), []
    runs = [(cond, seed, out / f"{cond}-seed{seed}") for cond in args.conditions for seed in args.seeds]
    for cond, seed, folder in runs:                   # a finished run is reused only if it is this setting
        if (folder / "run.json").exists():
            rec = json.loads((folder / "run.json").read_text())
            found, want = (rec["n_train"], rec["config"]["epochs"]), (len(data[0]), args.epochs)
            if found != want:
                print(f"cnn_clusterability.py: error: {folder / 'run.json'}: trained on {found[0]} images for "
                      f"{found[1]} epochs, expected {want[0]} and {want[1]}; remove it or use another --out",
                      file=sys.stderr)
                raise SystemExit(2)
    t0 = time.perf_counter()
    _train_all(args, data, [run for run in runs if not (run[2] / "run.json").exists()])
    wall = time.perf_counter() - t0
    for cond, seed, folder in runs:
        rec = json.loads((folder / "run.json").read_text())
        rows.append({"condition": cond, "seed": seed, "unpruned": rec["test_accuracy_unpruned"],
                     "pruned": rec["test_accuracy_pruned"], "sparsity_per_layer": rec["sparsity_per_layer"],
                     "seconds": rec["seconds"], "train_seconds": rec.get("train_seconds"),
                     "prune_seconds": rec.get("prune_seconds"), "device": rec.get("device", "cpu"),
                     "n_train": rec["n_train"], "folder": str(folder)})
        print(f"{cond} seed {seed}: test accuracy unpruned {rows[-1]['unpruned']:.4f}, "
              f"pruned {rows[-1]['pruned']:.4f}, {rec['seconds']:.0f} s on {rows[-1]['device']}", flush=True)
    summary = {"runs": rows, "accuracy_bar": ACCURACY_BAR,
               "all_meet_bar": all(min(r["unpruned"], r["pruned"]) >= ACCURACY_BAR for r in rows),
               "train_subset": args.train_subset, "jobs": args.jobs, "threads": args.threads,
               "device": args.device, "wall_seconds": wall}
    (out / "train.json").write_text(json.dumps(summary, indent=2))
    print(f"all runs >= {ACCURACY_BAR}: {summary['all_meet_bar']}  ({out / 'train.json'}; {wall:.0f} s wall)")


def random(args) -> None:
    from trainers.cnn_train import random_init_cnns

    for arch in args.arch:
        paths = random_init_cnns(arch, seeds=range(args.nets), out_dir=Path(args.out) / "random")
        print(f"{arch}: {args.nets} networks (.onnx + .h5) in {Path(paths[0]).parent}")


def _time_phase(model, x, y, cfg, *, prune: bool, gen) -> list[float]:
    import torch

    from trainers.clusterability import run_phase

    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)      # time the GPU's work, not the launches

    def stamp(t):
        sync()
        stamps.append(time.perf_counter())

    stamps = [time.perf_counter()]
    run_phase(model, x, y, cfg, epochs=1, prune=prune, gen=gen, on_step=stamp)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def time_steps(args) -> None:
    import torch

    from trainers.cnn import small_cnn
    from trainers.cnn_train import CNNConfig, cnn_mnist
    from trainers.device import device_mode, resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = CNNConfig(seed=0)
    x, y, _, _ = cnn_mnist()
    n = args.steps * cfg.batch_size
    x, y = torch.from_numpy(x[:n]).to(device), torch.from_numpy(y[:n]).to(device)
    model = small_cnn(seed=0, dropout=True).to(device)           # the dearer condition
    t0 = time.perf_counter()
    with device_mode(device):
        train_s = _time_phase(model, x, y, cfg, prune=False, gen=torch.Generator().manual_seed(0))
        prune_s = _time_phase(model, x, y, cfg, prune=True, gen=torch.Generator().manual_seed(1))
    wall = time.perf_counter() - t0
    per_phase = math.ceil(60000 / cfg.batch_size) * cfg.epochs           # 9,380 steps per phase
    med_t, med_p = statistics.median(train_s), statistics.median(prune_s)
    mean_t, mean_p = sum(train_s) / len(train_s), sum(prune_s) / len(prune_s)
    run_h = (mean_t + mean_p) * per_phase / 3600
    print(f"small CNN (64-64-64, dense 128, with dropout), batch {cfg.batch_size}, {args.threads} torch thread(s) "
          f"on {device}, {args.steps} steps per phase, {wall:.1f} s in all")
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


NORMS = ("l1", "l2", "filan", "nnz")
#: acceptance tolerance of the filan-norm n-cut around the published mean (issue 18)
TOLERANCE = {"small-cnn": 0.05, "vgg13": 0.10}
#: published trained small CNN on MNIST, k = 12, 50 `layer` shuffles (§8.4): (n-cut, null mean, p or None)
PUBLISHED_TRAINED = {"unpruned": (10.69, 10.67, 0.75), "pruned": (10.46, 10.03, None)}


def _random_files(arch: str, nets: int, out: Path) -> list[Path]:
    """The random-init ``.h5`` exports of seeds 0..nets-1, written first where missing."""
    from trainers.cnn_train import random_init_cnns

    folder = out / "random"
    want = [folder / f"{arch}-seed{s}.h5" for s in range(nets)]
    missing = [s for s, path in enumerate(want) if not path.exists()]
    if missing:
        random_init_cnns(arch, seeds=missing, out_dir=folder)
    return want


def random_ncut(args) -> None:
    """§8.3 through modgraph's pipeline: load each exported .h5, filan view under each edge norm, k = 12."""
    import numpy as np

    from modgraph.detect.spectral import spectral
    from modgraph.graph import build_unit_graph, drop_isolated
    from modgraph.io import load

    head = ("| network | nets | units | edges | " + " | ".join(f"n-cut {n}" for n in NORMS) +
            " | published | filan − published | within | s per net |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    print("\n".join(lines), flush=True)
    for arch in args.arch:
        cuts, t0 = {n: [] for n in NORMS}, time.perf_counter()
        for seed, path in enumerate(_random_files(arch, args.nets, Path(args.out))):
            net = load(path)
            for norm in NORMS:
                g = drop_isolated(build_unit_graph(net, view="filan", edge_norm=norm))
                cuts[norm].append(spectral(g, k=args.k, seed=seed).stats["ncut"])
        (pub, pub_sd), tol = PUBLISHED_RANDOM[arch], TOLERANCE[arch]
        mean = {n: float(np.mean(v)) for n, v in cuts.items()}
        cells = " | ".join(f"{mean[n]:.3f} ± {np.std(cuts[n]):.3f}" for n in NORMS)
        ok = "yes" if abs(mean["filan"] - pub) <= tol else "NO"
        lines.append(f"| {arch} | {args.nets} | {g.n_units} | {g.n_edges:,} | {cells} | {pub:.3f} ± {pub_sd:.3f} | "
                     f"{mean['filan'] - pub:+.3f} | {ok} (±{tol}) | {(time.perf_counter() - t0) / args.nets:.1f} |")
        print(lines[-1], flush=True)
    if args.results:
        _write(args.results, "cnn-random", "\n".join(lines) + "\n\n" + _stamp(args))


def _stamp(args) -> str:
    import os

    return (f"`python benchmarks/cnn_clusterability.py {args.stage}` (k = {args.k}), "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f}.")


def _write(results: str, name: str, body: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from results import replace_section

    replace_section(Path(results), name, body)
    print(f"wrote section {name} of {results}")


def analyze(args) -> None:
    """n-cut of each trained run's channel graph against ``--shuffles`` `layer` shuffles (§8.4), per seed."""
    from modgraph.io import load
    from modgraph.nulls import significance

    out, rows = Path(args.out), []
    lines = ["| condition | seed | phase | test accuracy | n-cut | null mean ± sd | z | p | significant | "
             "published n-cut / null / p | s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for cond in args.conditions:
        for seed in args.seeds:
            folder = out / f"{cond}-seed{seed}"
            rec = json.loads((folder / "run.json").read_text())
            for phase in ("unpruned", "pruned"):
                if not (folder / f"{phase}.h5").exists():
                    continue
                res = significance(load(folder / f"{phase}.h5"), method="spectral", options={"k": args.k},
                                   n_shuffles=args.shuffles, seed=seed, view="filan", edge_norm="filan",
                                   n_jobs=args.jobs)
                acc = rec.get(f"test_accuracy_{phase}")
                rows.append({"condition": cond, "seed": seed, "phase": phase, "accuracy": acc,
                             "ncut": res.true_value, "null_mean": res.null_mean, "null_sd": res.null_sd,
                             "z": res.z, "p": res.p, "significant": res.significant, "n_shuffles": res.n_shuffles,
                             "n_units": res.n_units, "seconds": res.seconds})
                pub = PUBLISHED_TRAINED[phase]
                z = "n/a" if res.z is None else f"{res.z:.2f}"
                lines.append(f"| {cond} | {seed} | {phase} | {acc:.4f} | {res.true_value:.3f} | {res.null_mean:.3f} ± "
                             f"{res.null_sd:.3f} | {z} | {res.p:.3f} | {'yes' if res.significant else 'no'} | "
                             f"{pub[0]} / {pub[1]} / {pub[2] if pub[2] is not None else '-'} | {res.seconds:.0f} |")
                print(lines[-1], flush=True)
    summary = {"k": args.k, "n_shuffles": args.shuffles, "view": "filan", "edge_norm": "filan", "runs": rows,
               "published": PUBLISHED_TRAINED, "accuracy_bar": ACCURACY_BAR,
               "all_meet_bar": all(r["accuracy"] is not None and r["accuracy"] >= ACCURACY_BAR for r in rows)}
    (out / "analysis.json").write_text(json.dumps(summary, indent=2))
    print(f"accuracy >= {ACCURACY_BAR} in every run: {summary['all_meet_bar']}  ({out / 'analysis.json'})")
    if args.results:
        _write(args.results, "cnn-trained", "\n".join(lines) + "\n\n" + _stamp(args) +
               f" {args.shuffles} `layer` shuffles per network.")


def trained(args) -> None:
    """End to end: ``train`` (skips finished runs) then ``analyze``."""
    train(args)
    analyze(args)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="cnn_clusterability.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    t, tr, an = sub.add_parser("train"), sub.add_parser("trained"), sub.add_parser("analyze")
    for q in (t, tr):
        q.add_argument("--epochs", type=int, default=10)
    for q in (t, tr, an):
        q.add_argument("--conditions", nargs="+", default=["plain"], choices=list(CONDITIONS))
    for q in (tr, an):
        q.add_argument("--shuffles", type=int, default=50)
    for q in (t, tr, an):
        q.add_argument("--jobs", type=int, default=1,
                       help="train: runs trained at once, each in its own process; analyze: shuffle workers")
    r = sub.add_parser("random")
    r.add_argument("--arch", nargs="+", default=["small-cnn", "vgg13"], choices=["small-cnn", "vgg13"])
    r.add_argument("--nets", type=int, default=6)
    s = sub.add_parser("time")
    s.add_argument("--steps", type=int, default=200)
    n = sub.add_parser("random-ncut")
    n.add_argument("--arch", nargs="+", default=["small-cnn", "vgg13"], choices=["small-cnn", "vgg13"])
    n.add_argument("--nets", type=int, default=6)
    for q in (n, tr, an):
        q.add_argument("--k", type=int, default=12)
        q.add_argument("--results", default=None, help="write the table into this file (docs/results.md)")
    for q in (t, tr, an, r, s, n):
        q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
        q.add_argument("--out", default="runs/cnn_clusterability")
        q.add_argument("--threads", type=int, default=1)
    for q in (t, tr, s):
        q.add_argument("--device", choices=DEVICES, default="cpu",
                       help="cpu (default), cuda, or auto (cuda when torch sees a GPU)")
    for q in (t, tr):
        q.add_argument("--train-subset", type=int, default=None, metavar="K",
                       help="train on the first K training images only: tests and smoke runs, NOT the published "
                            "setting (the test set stays whole)")
    args = p.parse_args(argv)
    _check_args(p, args)
    {"train": train, "random": random, "time": time_steps, "random-ncut": random_ncut, "analyze": analyze,
     "trained": trained}[args.stage](args)

if __name__ == "__main__":
    main()
