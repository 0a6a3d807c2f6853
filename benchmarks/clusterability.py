"""Clusterability of pruned MNIST MLPs (arXiv 2103.03386, ``clusterability.md`` §8.2, §10 C).

Stages (each resumable; finished runs are skipped)::

    python benchmarks/clusterability.py train    [--seeds 0 1 2 3 4] [--out runs/clusterability]
    python benchmarks/clusterability.py analyse  [--shuffles 50] [--k 12] [--null layer]
    python benchmarks/clusterability.py lesion   [--seeds 0]
    python benchmarks/clusterability.py report   [--results docs/results.md]

``train`` fits the 784-256×4-10 MLP for each seed × {dropout 0.5, no dropout} and exports
the unpruned and pruned networks; ``analyse`` runs spectral n-cut at k against N shuffles
of each pruned (and unpruned) network; ``lesion`` lesions each spectral sub-module of the
pruned nets against random same-size lesions (with true and with permuted labels); ``report`` prints the table and writes the
"Clusterability (MNIST MLP)" section of ``docs/results.md`` against the published numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

CONDITIONS = {"dropout": 0.5, "plain": 0.0}
#: published P2 numbers (pruned, k = 12, 50 `layer` shuffles): n-cut, null, z, accuracy
PUBLISHED = {"dropout": (8.35, 9.25, -24.0, 0.980), "plain": (8.88, 9.18, -9.7, 0.984)}
PUBLISHED_UNPRUNED = {"dropout": (9.97, 10.30, -3.0), "plain": (10.02, 10.17, -4.5)}
#: pruned vs `layer_nonzero` (§8.2 "both nulls"; z not published): n-cut, null, z
PUBLISHED_NONZERO = {"dropout": (8.36, 8.59, "n/a"), "plain": (9.01, 9.08, "n/a")}
SECTION = "## Clusterability (MNIST MLP)"


def _runs(out: Path, seeds):
    for seed in seeds:
        for cond in CONDITIONS:
            yield cond, seed, out / f"{cond}-seed{seed}"


def train(args) -> None:
    import torch
    from tqdm import tqdm

    from trainers.clusterability import ClusterabilityConfig, train_clusterability
    from trainers.tasks.mnist import clusterability_mnist

    torch.set_num_threads(args.threads)
    data = clusterability_mnist()
    for cond, seed, folder in _runs(Path(args.out), args.seeds):
        if (folder / "run.json").exists():
            continue
        cfg = ClusterabilityConfig(seed=seed, dropout=CONDITIONS[cond], epochs=args.epochs,
                                   prune_epochs=args.epochs)
        bar = tqdm(total=cfg.epochs + cfg.prune_epochs, desc=f"{cond} seed {seed}", file=sys.stdout,
                   mininterval=5)
        rec = train_clusterability(data, config=cfg, out_dir=folder,
                                   progress=lambda r: (bar.update(1), bar.set_postfix(phase=r["phase"],
                                                                                     loss=f"{r['loss']:.4f}")))
        bar.close()
        print(f"{cond} seed {seed}: acc unpruned {rec['test_accuracy_unpruned']:.4f} pruned "
              f"{rec['test_accuracy_pruned']:.4f} in {rec['seconds']:.0f} s", flush=True)


def analyse(args) -> None:
    from modgraph.io import load
    from modgraph.nulls import significance

    for cond, seed, folder in _runs(Path(args.out), args.seeds):
        for phase in args.phases:
            net_path = folder / f"{phase}.h5"
            target = folder / f"significance-{phase}-k{args.k}-{args.null}-{args.shuffles}.json"
            if target.exists() or not net_path.exists():
                continue
            t0 = time.perf_counter()
            res = significance(load(net_path), method="spectral", null=args.null, n_shuffles=args.shuffles,
                               seed=seed, n_jobs=args.jobs, options={"k": args.k}, progress=True)
            res.save_json(target)
            print(f"{cond} seed {seed} {phase}: n-cut {res.true_value:.3f} null {res.null_mean:.3f} "
                  f"z {res.z:.1f} p {res.p:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)


def lesion(args) -> None:
    """Lesion every spectral sub-module (k, pruned net) against 20 random same-size lesions."""
    from modgraph.detect.spectral import spectral
    from modgraph.graph import build_unit_graph
    from modgraph.io import atomic_path, load
    from modgraph.lesion import importance
    from trainers.tasks.mnist import clusterability_mnist

    _, _, x_test, y_test = clusterability_mnist()
    for cond, seed, folder in _runs(Path(args.out), args.seeds):
        target = folder / f"lesion-pruned-k{args.k}.json"
        if target.exists() or not (folder / "pruned.h5").exists():
            continue
        t0 = time.perf_counter()
        net = load(folder / "pruned.h5")
        labels = spectral(build_unit_graph(net), k=args.k, seed=seed).labels
        res = {"true": importance(net, labels, x_test, y_test, n_random=20, seed=seed),
               "random_labels": importance(net, np.random.default_rng(seed).permutation(labels), x_test, y_test,
                                           n_random=20, seed=seed)}
        res["seconds"] = time.perf_counter() - t0
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(res))
        print(f"{cond} seed {seed}: lesion Fisher p (mean class accuracy) {res['true']['fisher_p_mean']:.2e}, "
              f"with random labels {res['random_labels']['fisher_p_mean']:.2e} ({res['seconds']:.0f} s)", flush=True)


def _lesion_lines(out: Path, seeds, k) -> list[str]:
    rows = []
    for cond, seed, folder in _runs(out, seeds):
        path = folder / f"lesion-pruned-k{k}.json"
        if path.exists():
            r = json.loads(path.read_text())
            kinds = {}
            for m in r["true"]["modules"]:
                kinds[m["class"]] = kinds.get(m["class"], 0) + 1
            rows.append(f"| {cond} | {seed} | {len(r['true']['modules'])} | {r['true']['fisher_p_mean']:.1e} | "
                        f"{r['true']['chi2_p_mean']:.1e} | {r['true']['fisher_p_range']:.2f} | "
                        f"{r['random_labels']['fisher_p_mean']:.2f} | "
                        f"{', '.join(f'{v} {c}' for c, v in sorted(kinds.items()))} |")
    if not rows:
        return []
    return ["**Lesions** (pruned, spectral sub-modules at k = 12, 20 random same-size lesions each; "
            "§10 C.16 wants Fisher p < 1e-5, and roughly uniform p with random labels)", "",
            "| condition | seed | sub-modules | Fisher p (mean class acc) | χ² p | Fisher p (range) | "
            "Fisher p, random labels | P1 classes |", "|---|---|---|---|---|---|---|---|"] + rows + [""]


def _collect(out: Path, seeds, phase, k, null, shuffles) -> dict:
    rows = {}
    for cond, seed, folder in _runs(out, seeds):
        sig = folder / f"significance-{phase}-k{k}-{null}-{shuffles}.json"
        run = folder / "run.json"
        if sig.exists() and run.exists():
            s, r = json.loads(sig.read_text()), json.loads(run.read_text())
            rows.setdefault(cond, []).append({"seed": seed, "ncut": s["true_value"], "null": s["null_mean"],
                                              "z": s["z"], "p": s["p"], "significant": s["significant"],
                                              "acc": r[f"test_accuracy_{phase}"], "seconds": r["seconds"],
                                              "sig_seconds": s.get("seconds")})
    return rows


def _table(rows: dict, published: dict, n: int) -> list[str]:
    lines = ["| condition | seeds | n-cut (mean ± sd) | null mean | mean z | significant | test acc (min) "
             "| published n-cut / null / z |",
             "|---|---|---|---|---|---|---|---|"]
    for cond, rs in rows.items():
        nc = np.array([r["ncut"] for r in rs])
        pub = published[cond]
        lines.append(f"| {cond} | {len(rs)} | {nc.mean():.3f} ± {nc.std():.3f} | "
                     f"{np.mean([r['null'] for r in rs]):.3f} | {np.mean([r['z'] for r in rs]):.1f} | "
                     f"{sum(r['significant'] for r in rs)}/{len(rs)} (p = 1/{n + 1}) | "
                     f"{min(r['acc'] for r in rs):.4f} | {pub[0]} / {pub[1]} / {pub[2]} |")
    return lines


def report(args) -> None:
    out = Path(args.out)
    body = [SECTION, "",
            f"Spectral n-cut at k = {args.k} against {args.shuffles} shuffles "
            "(`benchmarks/clusterability.py`; MLP 784-256×4-10, 20 epochs + 20 pruning epochs to 90 % per "
            "layer; published numbers: arXiv 2103.03386 released results, `clusterability.md` §8.2).", ""]
    for phase, null, pub in (("pruned", args.null, PUBLISHED), ("unpruned", args.null, PUBLISHED_UNPRUNED),
                             ("pruned", "layer_nonzero", PUBLISHED_NONZERO)):
        rows = _collect(out, args.seeds, phase, args.k, null, args.shuffles)
        if not rows:
            continue
        body += [f"**{phase}, `{null}` null**", ""] + _table(rows, pub, args.shuffles) + [""]
        if (phase, null) == ("pruned", args.null) and {"dropout", "plain"} <= set(rows):
            mean = {c: np.mean([r["ncut"] for r in rows[c]]) for c in rows}
            z = {c: np.mean([r["z"] for r in rows[c]]) for c in rows}
            body += [f"Dropout lowers the pruned n-cut by {mean['plain'] - mean['dropout']:.3f} (§10 C.11 wants "
                     f"> 0.3) and multiplies the mean |z| by {z['dropout'] / z['plain']:.1f} (wants ≥ 2). Training "
                     "times are wall seconds on a shared, heavily loaded 2-core machine (one torch thread; "
                     "≈ 4 s per epoch when idle).", ""]
        body += ["Per network:", "", "| condition | seed | n-cut | null mean | z | p | significant | test acc "
                 "| train s | shuffles s |", "|---|---|---|---|---|---|---|---|---|---|"]
        for cond, rs in rows.items():
            body += [f"| {cond} | {r['seed']} | {r['ncut']:.3f} | {r['null']:.3f} | {r['z']:.1f} | {r['p']:.4f} | "
                     f"{r['significant']} | {r['acc']:.4f} | {r['seconds']:.0f} | {r['sig_seconds'] or 0:.0f} |"
                     for r in rs]
        body.append("")
    body += _lesion_lines(out, args.seeds, args.k)
    for title, log in (("Random-init calibration (`benchmarks/random_init_ncut.py`)", "random_init_ncut.log"),
                       ("Speed against scikit-learn (`benchmarks/significance_vs_sklearn.py`)",
                        "significance_vs_sklearn.log")):
        path = out.parent / log
        if path.exists() and path.read_text().strip():
            lines = [l for l in path.read_text().splitlines() if l.strip() and "it/s]" not in l and "s/it]" not in l]
            body += [f"**{title}**", "", "```"] + lines + ["```", ""]
            if log.startswith("significance"):
                body += ["The ≥ 10× target is not met: 4.8× on an idle machine, 5.7× under load, with n-cuts "
                         "within 0.01 % (null mean) and 0.74 % (worst single graph). The eigenvectors are 15× "
                         "faster (exact bipartite solve of a 522-unit Gram matrix instead of ARPACK shift-invert "
                         "on 1,723 units); the 25-restart k-means, now most of the time, is at parity with "
                         "scikit-learn's compiled KMeans (1.2×). On this 2-core machine worker processes do not pay "
                         "for a 4-second job (spawn start-up); they do for larger graphs or more shuffles.", ""]
    text = "\n".join(body)
    print(text)
    _write_section(Path(args.results), text)


def _write_section(path: Path, text: str) -> None:
    from modgraph.io import atomic_path

    old = path.read_text() if path.exists() else "# Results\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text.rstrip("\n") + "\n" + (old[nxt:] if nxt >= 0 else "")
    with atomic_path(path) as tmp:
        tmp.write_text(new)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["train", "analyse", "lesion", "report"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", default="runs/clusterability")
    p.add_argument("--epochs", type=int, default=20, help="epochs per phase (default 20)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--k", type=int, default=12)
    p.add_argument("--shuffles", type=int, default=50)
    p.add_argument("--null", default="layer")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--phases", nargs="+", default=["pruned", "unpruned"])
    p.add_argument("--results", default="docs/results.md")
    args = p.parse_args(argv)
    {"train": train, "analyse": analyse, "lesion": lesion, "report": report}[args.stage](args)


if __name__ == "__main__":
    main()
