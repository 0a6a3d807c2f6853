"""A seeded smoke of benchmarks/fuzz.py (issue 16): a fixed number of mutants per reader, each read in
the 2 GB-capped sandbox; none may end in a traceback, MemoryError, crash or hang. The long runs are
``nice -n 10 .venv/bin/python benchmarks/fuzz.py --minutes N``."""
from pathlib import Path

import pytest

from modgraph.io.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[3]
CASES = 15


@pytest.fixture(scope="module")
def fuzz(request):
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(ROOT / "benchmarks"))
    import fuzz as module
    yield module
    mp.undo()


@pytest.fixture(scope="module")
def box():
    with Sandbox(cap_bytes=2 * 2**30, timeout_s=5.0) as sandbox:
        yield sandbox


@pytest.mark.parametrize("reader", ["onnx", "modgraph-hdf5", "keras-h5", "keras", "torch", "safetensors"])
def test_seeded_fuzz_smoke_finds_nothing(fuzz, box, reader):
    stats = fuzz.fuzz(reader, cases=CASES, seed=20261203, sandbox=box)
    assert stats["executions"] == CASES
    assert stats["findings"] == [], stats["findings"][:3]
    assert stats["kinds"].get("refused", 0) > 0 and len(stats["signatures"]) > 3       # the mutants do bite
    assert stats["max_seconds"] < 5


def test_mutation_is_seeded(fuzz, tmp_path):
    import random
    seeds = fuzz.seed_files("onnx", tmp_path / "s")
    out = []
    for k in range(2):
        fuzz.mutate("onnx", seeds[0], tmp_path / f"m{k}.onnx", random.Random(7))
        out.append((tmp_path / f"m{k}.onnx").read_bytes())
    assert out[0] == out[1] and out[0] != seeds[0].read_bytes()


def test_coverage_replay_is_the_campaign(fuzz, box):
    """benchmarks/fuzz_coverage.py re-reads a campaign's cases under coverage: the same cases give the
    same outcomes, and the reader's own module is measured (its coverage is what the closing note quotes)."""
    import fuzz_coverage
    campaign = fuzz.fuzz("safetensors", cases=25, seed=4, sandbox=box)
    again = fuzz_coverage.replay("safetensors", 4, 25, timeout_s=5.0, progress=False)
    assert again["kinds"] == campaign["kinds"] and again["restarts"] == 0
    st = again["files"]["modgraph/io/safetensors.py"]
    assert st["statements"] > 100 and 0 < st["missed"] < st["statements"] // 2
    assert 0 < again["reader_total"]["percent"] < 100
