"""Kill ``modgraph analyze --out DIR`` at random points and check that DIR is absent or complete.

Issue 16 acceptance: N trials per signal (SIGINT, SIGKILL), each killing the command after a
delay drawn uniformly from [0, 1.2 x the measured run time] (seeded), on one small network
and one method (one run: the --out that is staged and renamed at the end). After each kill DIR
must be either absent or complete: the five files, analysis.json parseable. (Several runs use
the study engine, whose run folders are stored one by one: docs/study.md.) Leftover hidden ``.DIR.*.part`` siblings (possible after SIGKILL)
are counted, then removed, and so are the runs whose stderr holds a traceback. The command is run as
``python -m modgraph``, the console script's entry point (modgraph.console): Ctrl-C is handled from
its first line, imports included; only a SIGINT inside the interpreter's own start-up (the first tens
of milliseconds) ends the process by the signal itself, exit -2 and nothing written.

Usage: .venv/bin/python benchmarks/interrupt_trials.py [--trials 20] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modgraph.analyze import OUTPUT_FILES
from modgraph.io import save
from modgraph.testing import sculpted_networks



def _state(out: Path) -> str:
    if not out.exists():
        return "absent"
    try:
        ok = sorted(q.name for q in out.iterdir()) == sorted(OUTPUT_FILES)
        json.loads((out / "analysis.json").read_text())
    except (OSError, ValueError):
        ok = False
    return "complete" if ok else "BROKEN"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="interrupt-trials-"))
    net = work / "a.h5"
    save(sculpted_networks()["[6,3,3,3]"][0], net)
    cmd = [sys.executable, "-m", "modgraph", "analyze", str(net), "--quiet"]      # as the modgraph command
    start = time.perf_counter()
    subprocess.run([*cmd, "--out", str(work / "full")], check=True, capture_output=True)
    full = time.perf_counter() - start
    print(f"one full run: {full:.2f} s; delays uniform in [0, {1.2 * full:.2f}] s; {args.trials} trials per signal")
    print(f"{'signal':8s} {'trials':>6s} {'absent':>6s} {'complete':>8s} {'broken':>6s} {'exit codes':>20s} "
          f"{'.part left':>10s} {'tracebacks':>10s}")
    broken = 0
    for sig in (signal.SIGINT, signal.SIGKILL):
        counts = {"absent": 0, "complete": 0, "BROKEN": 0}
        codes, parts, tracebacks = {}, 0, 0
        for i in range(args.trials):
            out = work / f"out-{sig.name}-{i}"
            p = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
            time.sleep(rng.uniform(0, 1.2 * full))
            p.send_signal(sig)
            tracebacks += "Traceback" in p.communicate()[1]
            rc = p.returncode
            codes[rc] = codes.get(rc, 0) + 1
            counts[_state(out)] += 1
            left = list(work.glob(f".{out.name}.*"))
            parts += len(left)
            for q in left:
                shutil.rmtree(q, ignore_errors=True)
        broken += counts["BROKEN"]
        code_text = ",".join(f"{k}:{v}" for k, v in sorted(codes.items()))
        print(f"{sig.name:8s} {args.trials:6d} {counts['absent']:6d} {counts['complete']:8d} {counts['BROKEN']:6d} "
              f"{code_text:>20s} {parts:10d} {tracebacks:10d}")
    shutil.rmtree(work, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
