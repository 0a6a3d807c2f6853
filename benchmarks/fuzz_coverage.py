"""Line and branch coverage of a fuzz campaign (issue 16), by replaying its cases exactly.

    nice -n 10 .venv/bin/python benchmarks/fuzz_coverage.py --reader onnx --seed 11 --cases 30000
        [--cap-mb 2048] [--timeout 10] [--out out/fuzz/coverage-onnx-11.json]

``benchmarks/fuzz.py`` draws every case from ``random.Random(f"{reader}:{seed}")`` over seed files
made from the same seed, so the first N cases of a campaign (N = its ``executions``) can be made
again, byte for byte. Here they are read again one after the other in a forked worker that runs
coverage.py (line and branch, source ``modgraph``) under the same address-space cap, with a
per-case alarm; a worker that dies or stops answering is replaced by one that remakes (without
reading) the cases before it and goes on. Prints the outcome counts, which must equal the
campaign's table (the check that the replay is the campaign), as must the number of mutations
lost (fuzz.mutate: a mutation whose child crashed or hung), and the coverage of each modgraph
file the reader reached; writes both as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import coverage  # noqa: E402

import fuzz  # noqa: E402  (benchmarks/fuzz.py: seed files, mutations)

SAVE_EVERY = 500          # cases between coverage saves, so a dying worker loses little
#: The modules that implement each reader (the "reader total" row); shared ones (limits, registry,
#: _chain, the network values) are listed in the table but not in that total.
READER_FILES = {
    "onnx": ("onnx.py", "onnx_dag.py", "_onnx_dag_ops.py", "_onnx_dag_reindex.py", "_onnx_fold.py",
             "_onnx_graph.py", "_onnx_ops.py", "_onnx_skeleton.py", "_onnx_tensors.py"),
    "modgraph-hdf5": ("hdf5.py", "hdf5_dag.py"),
    "keras-h5": ("keras.py", "keras_dag.py", "keras_layers.py"),
    "keras": ("keras_zip.py", "keras.py", "keras_dag.py", "keras_layers.py"),
    "torch": ("torch_state.py", "state_chain.py"),
    "safetensors": ("safetensors.py", "state_chain.py"),
}
_IMPORTS = """
import coverage, importlib, pkgutil, sys
cov = coverage.Coverage(data_file=sys.argv[1], data_suffix=True, branch=True, source=["modgraph"], config_file=False)
cov.start()
import modgraph.io
for m in pkgutil.iter_modules(modgraph.io.__path__):
    importlib.import_module("modgraph.io." + m.name)
import modgraph.network, modgraph.dag, modgraph.dag_builder, modgraph.dag_ops
cov.stop()
cov.save()
"""


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _worker(reader: str, seed: int, seeds: list[Path], case: Path, start: int, stop: int, timeout_s: float,
            cap_bytes: int, data_file: Path, out_fd: int) -> None:
    """Forked: remake cases < start without reading them, read start..stop-1 under coverage."""
    try:
        # the soft limit caps the reads; the hard one is left, so that a mutation's own child (fuzz.mutate)
        # gets the same allowance above its start as in the campaign, whose harness has no cap
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, resource.getrlimit(resource.RLIMIT_AS)[1]))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        r = random.Random(f"{reader}:{seed}")
        for _ in range(start):
            fuzz.mutate(reader, r.choice(seeds), case, r)
        from modgraph.errors import FormatError
        from modgraph.io import load
        signal.signal(signal.SIGALRM, _on_alarm)
        cov = coverage.Coverage(data_file=str(data_file), data_suffix=True, branch=True,
                                source=["modgraph"], config_file=False)
        cov.start()
        for i in range(start, stop):
            lost = len(fuzz.mutate(reader, r.choice(seeds), case, r))
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            try:
                load(case)
                kind = "ok"
            except FormatError:
                kind = "refused"
            except MemoryError:
                kind = "memory"
            except _Timeout:
                kind = "hang"
            except BaseException:             # noqa: BLE001 - anything else is a finding
                kind = "error"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            os.write(out_fd, f"{i} {kind} {lost}\n".encode())
            if (i + 1 - start) % SAVE_EVERY == 0:
                cov.stop()
                cov.save()
                cov.start()
        cov.stop()
        cov.save()
    finally:
        os._exit(0)


def replay(reader: str, seed: int, cases: int, *, timeout_s: float = 10.0, cap_bytes: int = 2 * 2**30,
           progress: bool = True) -> dict:
    """Re-read the first ``cases`` cases of campaign (reader, seed) under coverage; returns counts + coverage."""
    work = Path(tempfile.mkdtemp(prefix=f"fuzzcov-{reader}-"))
    kinds: dict[str, int] = {}
    restarts = lost = 0
    t0 = time.perf_counter()
    try:
        seeds = fuzz.seed_files(reader, work / "seeds", seed)
        suffix = {"onnx": ".onnx", "keras": ".keras", "torch": ".pt", "safetensors": ".safetensors"}.get(reader, ".h5")
        data_file = work / ".coverage"
        # the modules' own top-level lines run at import, before any worker starts: record them once
        # in a fresh interpreter, as `coverage run` would
        import subprocess
        subprocess.run([sys.executable, "-c", _IMPORTS, str(data_file)], check=True, cwd=ROOT)
        nxt = 0
        while nxt < cases:
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(rfd)
                _worker(reader, seed, seeds, work / f"case{suffix}", nxt, cases, timeout_s, cap_bytes, data_file, wfd)
            os.close(wfd)
            buf = b""
            last = time.perf_counter()
            with os.fdopen(rfd, "rb", buffering=0) as pipe:
                while True:
                    ready, _, _ = select.select([pipe], [], [], 1.0)
                    if ready:
                        chunk = pipe.read(65536)
                        if not chunk:
                            break
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        for line in lines:
                            i, kind, n_lost = line.decode().split()
                            kinds[kind] = kinds.get(kind, 0) + 1
                            lost += int(n_lost)
                            nxt = int(i) + 1
                            last = time.perf_counter()
                            if progress and nxt % 1000 == 0:
                                print(f"  {reader}: {nxt}/{cases} cases, {time.perf_counter() - t0:.0f} s", flush=True)
                    elif time.perf_counter() - last > timeout_s + 30:
                        os.kill(pid, signal.SIGKILL)       # stuck where the alarm cannot reach (C code)
                        break
            _, status = os.waitpid(pid, 0)
            if nxt < cases:                    # the worker died or hung on case nxt: count it, go on after it
                killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
                kind = "hang" if killed else "crash"
                kinds[kind] = kinds.get(kind, 0) + 1
                nxt += 1
                restarts += 1
        cov = coverage.Coverage(data_file=str(data_file), branch=True, source=["modgraph"], config_file=False)
        cov.combine([str(work)], keep=False)
        data = cov.get_data()
        files = {}
        for path in sorted(data.measured_files()):
            rel = os.path.relpath(path, ROOT)
            _, statements, _, missing, _ = cov.analysis2(path)
            an = cov._analyze(path)                 # branch numbers: coverage's public API has no per-file getter
            n_br = an.numbers.n_branches
            n_partial = an.numbers.n_partial_branches
            n_missing_br = an.numbers.n_missing_branches
            files[rel] = {"statements": len(statements), "missed": len(missing), "branches": n_br,
                          "missed_branches": n_missing_br, "partial": n_partial,
                          "percent": round(an.numbers.pc_covered, 1)}
        mine = [f for rel, f in files.items() if rel.startswith("modgraph/io/")
                and os.path.basename(rel) in READER_FILES[reader]]
        st, ms, br, mb = (sum(f[k] for f in mine) for k in ("statements", "missed", "branches", "missed_branches"))
        total = {"statements": st, "missed": ms, "branches": br, "missed_branches": mb,
                 "percent": round(100.0 * (st - ms + br - mb) / max(st + br, 1), 1)}
        return {"reader": reader, "reader_total": total, "seed": seed, "cases": cases, "kinds": kinds, "restarts": restarts,
                "mutations_lost": lost,
                "wall_s": time.perf_counter() - t0, "files": files}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reader", choices=fuzz.READERS, required=True)
    ap.add_argument("--seed", type=int, required=True, help="the campaign's --seed")
    ap.add_argument("--cases", type=int, required=True, help="the campaign's executions")
    ap.add_argument("--cap-mb", type=int, default=2048)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--include", default="modgraph/io/,modgraph/network.py,modgraph/dag",
                    help="comma list of path prefixes for the per-file table (all files go to --out)")
    args = ap.parse_args(argv)
    res = replay(args.reader, args.seed, args.cases, timeout_s=args.timeout, cap_bytes=args.cap_mb * 2**20)
    print(f"{args.reader} seed {args.seed}: {args.cases} cases replayed in {res['wall_s']:.0f} s, "
          f"{res['restarts']} worker restarts; outcomes {json.dumps(res['kinds'], sort_keys=True)}; "
          f"{res['mutations_lost']} mutations lost")
    prefixes = tuple(p for p in args.include.split(",") if p)
    print(f"{'file':44} {'stmts':>6} {'miss':>5} {'branch':>6} {'bmiss':>5} {'cover':>6}")
    for rel, f in res["files"].items():
        if rel.startswith(prefixes):
            mark = " *" if os.path.basename(rel) in READER_FILES[args.reader] and rel.startswith("modgraph/io/") else ""
            print(f"{rel:44} {f['statements']:>6} {f['missed']:>5} {f['branches']:>6} {f['missed_branches']:>5} "
                  f"{f['percent']:>5.1f}%{mark}")
    t = res["reader_total"]
    print(f"{'reader total (* files)':44} {t['statements']:>6} {t['missed']:>5} {t['branches']:>6} "
          f"{t['missed_branches']:>5} {t['percent']:>5.1f}%")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
