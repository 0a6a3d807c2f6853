#!/usr/bin/env bash
# Issue 18's trained small CNNs (3 seeds, each unpruned + pruned, 10 + 10 epochs, batch 64, full MNIST)
# on a machine with a GPU or many cores, in one call of about 8 minutes or less:
#
#     OUT=/some/folder bash benchmarks/device_cnn.sh        (the GPU machine's run tool sets OUT)
#
# 1. Python: $PY, else the first of .venv/bin/python and python3 that imports torch, numpy, scipy, h5py,
#    onnx and tqdm, one whose torch sees a GPU first. MAKE_SETUP=1 runs `make setup` first (60 s at most);
#    it needs apt (graph-tool, chromium) and this project's local pip folders, so offline on another image it
#    fails, and it would install the CPU build of torch anyway: the default is to use the image's Python.
#    `import trainers.cnn_train` needs neither graph-tool nor igraph (modgraph imports them lazily).
# 2. MNIST: $MODGRAPH_MNIST_DIR, else the first of shared/data/mnist, runs/mnist, ../shared/data/mnist.
# 3. Smoke + speed probe: the same seeds, jobs, threads and device on the first 6,400 training images for
#    1 + 1 epochs (100 + 100 steps a run; exports too). From its step times it estimates the full run; when
#    that exceeds what is left of BUDGET_S (default 420 s, from the start of this script) it stops with exit 3
#    and the estimate in device_cnn.json, unless FORCE=1.
# 4. Full runs: benchmarks/cnn_clusterability.py train --seeds $SEEDS --device $DEVICE --jobs $JOBS --threads
#    $THREADS (defaults: 0 1 2, auto, one process per seed, cores / processes threads on the CPU, 2 on a GPU).
# 5. $OUT: device_cnn.json (machine, python, torch, device, timings, accuracies, the estimate), device_cnn.log,
#    train.json and one cnn-seed{S}.tar.gz per seed (plain-seed{S}/ with unpruned/pruned .onnx + .h5 and
#    run.json). Back on a CPU machine, unpack them into runs/cnn_clusterability/ and run
#    `python benchmarks/cnn_clusterability.py analyze --seeds 0 1 2 --shuffles 50 --results docs/results.md`.
# Exit: 0 done, 2 no Python / no MNIST / no GPU when DEVICE=cuda, 3 stopped by the budget, 4 a run failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
OUT=${OUT:-$ROOT/out/device_cnn}
mkdir -p "$OUT"
LOG=$OUT/device_cnn.log
: > "$LOG"
WORK=$(mktemp -d /tmp/device_cnn.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SEEDS=${SEEDS:-0 1 2}
DEVICE=${DEVICE:-auto}
BUDGET_S=${BUDGET_S:-420}
SMOKE_SUBSET=${SMOKE_SUBSET:-6400}
EPOCHS=${EPOCHS:-10}
TRAIN_SUBSET=${TRAIN_SUBSET:-}          # checks of this script only: the full runs on fewer images, NOT the published setting
export PYTHONUNBUFFERED=1
say() { echo "[device_cnn $(( $(date +%s) - START )) s] $*" | tee -a "$LOG"; }

if [ "${MAKE_SETUP:-0}" = 1 ]; then
    say "make setup (60 s at most)"
    timeout 60 make setup >> "$LOG" 2>&1; say "make setup: exit $?"
fi

NEED="import torch, numpy, scipy, h5py, onnx, tqdm"
PYBIN=""; PYCPU=""
for cand in ${PY:-} .venv/bin/python python3; do
    command -v "$cand" > /dev/null 2>&1 || continue
    "$cand" -c "$NEED" > /dev/null 2>&1 || { say "$cand: lacks one of torch numpy scipy h5py onnx tqdm"; continue; }
    if "$cand" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" > /dev/null 2>&1; then
        PYBIN=$cand; break
    fi
    [ -n "$PYCPU" ] || PYCPU=$cand
    [ -n "${PY:-}" ] && [ "$cand" = "$PY" ] && break           # a Python asked for is kept, GPU or not
done
PYBIN=${PYBIN:-$PYCPU}
if [ -z "$PYBIN" ]; then say "error: no Python here imports torch, numpy, scipy, h5py, onnx and tqdm"; exit 2; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PYBIN" -c "import trainers.cnn_train" >> "$LOG" 2>&1 || { say "error: cannot import trainers.cnn_train"; exit 2; }

if [ -z "${MODGRAPH_MNIST_DIR:-}" ]; then
    for d in shared/data/mnist runs/mnist ../shared/data/mnist; do
        [ -f "$d/train-images-idx3-ubyte.gz" ] && { export MODGRAPH_MNIST_DIR=$ROOT/$d; break; }
    done
fi
if [ -z "${MODGRAPH_MNIST_DIR:-}" ]; then
    say "error: no MNIST: set MODGRAPH_MNIST_DIR or carry the IDX files as runs/mnist"; exit 2
fi

CORES=$(nproc)
N_RUNS=$(echo $SEEDS | wc -w)
JOBS=${JOBS:-$N_RUNS}
RESOLVED=$("$PYBIN" - "$DEVICE" 2> "$WORK/device.err" <<'EOF'
import sys
from trainers.device import DeviceError, resolve_device
try:
    print(resolve_device(sys.argv[1]).type)
except DeviceError as err:
    sys.exit(str(err))
EOF
) || { say "error: $(tail -n 1 "$WORK/device.err")"; exit 2; }
if [ "$RESOLVED" = cuda ]; then THREADS=${THREADS:-2}; else THREADS=${THREADS:-$(( CORES / JOBS > 0 ? CORES / JOBS : 1 ))}; fi
"$PYBIN" - "$WORK/env.json" "$CORES" > /dev/null 2>> "$LOG" <<'EOF'
import json, os, platform, sys
import numpy, torch
env = {"python": sys.executable, "python_version": platform.python_version(), "torch": torch.__version__,
       "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "numpy": numpy.__version__,
       "cores": int(sys.argv[2]), "mnist": os.environ["MODGRAPH_MNIST_DIR"]}
json.dump(env, open(sys.argv[1], "w"), indent=2)
EOF
say "python $PYBIN; $(tr -d '\n' < "$WORK/env.json")"
say "device $RESOLVED, seeds $SEEDS, $JOBS process(es) x $THREADS thread(s), $CORES cores"

bench() { "$PYBIN" benchmarks/cnn_clusterability.py train --seeds $SEEDS --device "$RESOLVED" --jobs "$JOBS" \
              --threads "$THREADS" "$@"; }
T0=$(date +%s)
bench --epochs 1 --train-subset "$SMOKE_SUBSET" --out "$WORK/smoke" >> "$LOG" 2>&1 \
    || { say "error: the smoke run failed (the log's end says why)"; tail -n 25 "$LOG"; exit 4; }
SMOKE_WALL=$(( $(date +%s) - T0 ))
ESTIMATE=$("$PYBIN" - "$WORK/smoke/train.json" "$SMOKE_WALL" "$JOBS" "$EPOCHS" "$TRAIN_SUBSET" <<'EOF'
import json, math, sys
s = json.load(open(sys.argv[1]))
wall, jobs, epochs = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
steps_smoke = 2 * math.ceil(s["runs"][0]["n_train"] / 64)             # 1 + 1 epochs
steps_full = 2 * epochs * math.ceil(int(sys.argv[5] or 60000) / 64)
per_step = max((r["train_seconds"] + r["prune_seconds"]) / steps_smoke for r in s["runs"])
waves = math.ceil(len(s["runs"]) / jobs)
print(f"{wall + per_step * (steps_full - steps_smoke) * waves:.0f} {per_step:.5f}")
EOF
)
read EST_S PER_STEP <<< "$ESTIMATE"
LEFT=$(( BUDGET_S - ($(date +%s) - START) ))
say "smoke ok in $SMOKE_WALL s: $PER_STEP s per step per run; full runs estimated at $EST_S s, $LEFT s of the budget left"
cp "$WORK/smoke/train.json" "$OUT/smoke_train.json"

summary() {  # $1 = status
    "$PYBIN" - "$WORK/env.json" "$OUT" "$1" "$EST_S" "$PER_STEP" "$SMOKE_WALL" "${FULL_WALL:-}" \
        "$RESOLVED" "$JOBS" "$THREADS" "$(( $(date +%s) - START ))" <<'EOF'
import json, sys
from pathlib import Path
env = json.load(open(sys.argv[1])); out = Path(sys.argv[2])
rec = {"status": sys.argv[3], **env, "device": sys.argv[8], "jobs": int(sys.argv[9]), "threads": int(sys.argv[10]),
       "smoke_wall_s": float(sys.argv[6]), "per_step_s": float(sys.argv[5]), "estimated_full_s": float(sys.argv[4]),
       "full_wall_s": float(sys.argv[7]) if sys.argv[7] else None, "script_wall_s": float(sys.argv[11])}
if (out / "train.json").exists():
    rec["train"] = json.loads((out / "train.json").read_text())
(out / "device_cnn.json").write_text(json.dumps(rec, indent=2))
EOF
}
if [ "$EST_S" -gt "$LEFT" ] && [ "${FORCE:-0}" != 1 ]; then
    say "stopped: the full runs would take about $EST_S s, more than the $LEFT s left (FORCE=1 runs them anyway)"
    summary over-budget; exit 3
fi

T0=$(date +%s)
bench --epochs "$EPOCHS" ${TRAIN_SUBSET:+--train-subset $TRAIN_SUBSET} --out "$WORK/cnn" >> "$LOG" 2>&1 || { say "error: a full run failed"; summary failed; exit 4; }
FULL_WALL=$(( $(date +%s) - T0 ))
cp "$WORK/cnn/train.json" "$OUT/train.json"
for s in $SEEDS; do tar czf "$OUT/cnn-seed$s.tar.gz" -C "$WORK/cnn" "plain-seed$s"; done
summary done
say "done: full runs $FULL_WALL s; $(grep -h 'test accuracy' "$LOG" | tail -n "$N_RUNS" | tr '\n' ';')"
ls -l "$OUT" | tee -a "$LOG"
