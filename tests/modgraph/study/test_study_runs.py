"""Loss-free studies (issue 17): every run kept, error rows, resume after SIGKILL / SIGINT,
the process pool and Dask give the same table, one-line CLI errors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modgraph.cli import main
from modgraph.io import save
from modgraph.study import parse_spec, run_study
from modgraph.testing import random_network

SLOW = textwrap.dedent("""
    # a detector that waits 80 ms and then is modularity: 60 runs take seconds, so a kill lands mid-study
    import sys, time
    from modgraph.detect import DETECTORS, register

    @register("slow-modularity")
    def slow(graph, *, seed, **options):
        time.sleep(0.08)
        return DETECTORS["modularity"](graph, seed=seed, **options)

    from modgraph.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _tiny(root, n):
    for i in range(n):
        (root / f"runs/{i}").mkdir(parents=True, exist_ok=True)
        save(random_network([4, 6, 3], density=0.6, seed=i), root / f"runs/{i}/network.h5")


def _spec(root, methods, seeds=3, extra=""):
    text = f'[study]\nseeds = {seeds}\n{extra}[[inputs]]\npaths = ["runs/*/network.h5"]\nframework = "hdf5"\n'
    text += "".join(f'[[methods]]\nname = "{m}"\n' for m in methods)
    (root / "spec.toml").write_text(text)
    return root / "spec.toml"


def _stored(out: Path) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/result.json")}


def test_duplicate_stems_keep_every_run_and_an_unsupported_file_is_an_error_row(tmp_path, capsys):
    _tiny(tmp_path, 3)
    (tmp_path / "runs/x").mkdir()
    (tmp_path / "runs/x/network.h5").write_text("not a network")
    spec = _spec(tmp_path, ["modularity", "sculpting"], seeds=2)
    assert main(["study", str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"]) == 1
    assert "done: 16 of 16 runs stored (0 already stored, 16 computed now, 4 errors)" in capsys.readouterr().out
    rows = [json.loads(l) for l in (tmp_path / "out/runs.jsonl").read_text().splitlines()]
    assert len(rows) == 16 == len({r["run_id"] for r in rows}) == len(list((tmp_path / "out/runs").iterdir()))
    bad = [r for r in rows if r["status"] == "error"]
    assert {r["path"] for r in bad} == {str((tmp_path / "runs/x/network.h5").resolve())} and len(bad) == 4
    assert all(r["error"].startswith("FormatError: ") and "start of file" in r["error"] for r in bad)
    good = [r for r in rows if r["status"] == "ok"]
    assert len(good) == 12 and all(r["modules"] >= 1 and Path(r["path"]).is_absolute() for r in good)


def test_fail_fast_stops_at_the_first_failure(tmp_path, capsys):
    _tiny(tmp_path, 2)
    (tmp_path / "runs/0/network.h5").write_text("junk")
    spec = _spec(tmp_path, ["modularity"], seeds=1)
    assert main(["study", str(spec), "--out", str(tmp_path / "o"), "--workers", "1", "--fail-fast",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("modgraph study: error: run runs/0/network.h5 | analysis")
    assert "--fail-fast; 1 runs stored" in err


def _run_cli(tmp_path, spec, out, **popen):
    return subprocess.Popen([sys.executable, "-c", SLOW, "study", str(spec), "--out", str(out), "--workers", "2",
                             "--quiet"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **popen)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_an_interrupted_study_resumes_and_ends_with_the_same_table(tmp_path, sig):
    _tiny(tmp_path, 10)
    spec = _spec(tmp_path, ["slow-modularity", "sculpting"])          # 10 files x 2 methods x 3 seeds = 60
    whole = _run_cli(tmp_path, spec, tmp_path / "whole")
    assert whole.wait(60) == 0, whole.stderr.read()
    proc = _run_cli(tmp_path, spec, tmp_path / "cut")
    deadline = time.monotonic() + 60
    while len(_stored(tmp_path / "cut")) < 24 and time.monotonic() < deadline if (tmp_path / "cut/runs").exists() \
            else time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, sig)                                          # the whole process group, like Ctrl-C
    rc = proc.wait(30)
    before = _stored(tmp_path / "cut")
    assert 24 <= len(before) < 60, len(before)
    assert rc == (-9 if sig == signal.SIGKILL else 130)
    if sig == signal.SIGINT:                                          # the tables cover what was stored
        assert len((tmp_path / "cut/runs.csv").read_text().splitlines()) == len(before) + 1
    again = _run_cli(tmp_path, spec, tmp_path / "cut")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    after = _stored(tmp_path / "cut")
    assert len(after) == 60 and all(after[k] == v for k, v in before.items())   # finished runs not redone
    assert f"({len(before)} already stored, {60 - len(before)} computed now, 0 errors)" in out
    assert (tmp_path / "cut/runs.csv").read_bytes() == (tmp_path / "whole/runs.csv").read_bytes()
    assert not list((tmp_path / "cut/runs").glob("*/.*.part"))


def test_dask_local_and_the_pool_give_identical_tables(tmp_path):
    _tiny(tmp_path, 3)
    spec = parse_spec({"inputs": [{"paths": ["runs/*/network.h5"]}], "methods": ["sbm", "modularity"],
                       "study": {"seeds": 2}}, base=tmp_path)
    pool = run_study(spec, tmp_path / "pool", workers=2, progress=False)
    dask = run_study(spec, tmp_path / "dask", dask="local", progress=False)
    assert pool.computed == dask.computed == 12 and pool.errors == dask.errors == 0
    assert (tmp_path / "pool/runs.csv").read_bytes() == (tmp_path / "dask/runs.csv").read_bytes()
    workers = {json.loads(l)["worker"] for l in (tmp_path / "dask/runs.jsonl").read_text().splitlines()}
    assert len(workers) >= 1 and os.getpid() not in workers           # ran in Dask's worker processes


def test_a_users_dask_client_is_used_as_given(tmp_path):
    from distributed import Client, LocalCluster
    _tiny(tmp_path, 2)
    spec = parse_spec({"inputs": [{"paths": ["runs/*/network.h5"]}], "methods": ["modularity"]}, base=tmp_path)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        done = run_study(spec, tmp_path / "o", client=client, progress=False, report=False)
        assert done.computed == 2 and client.status == "running"      # the user's client stays open


@pytest.mark.parametrize("args, match", [
    (["--out", "{tmp}/file.txt/sub"], r"^modgraph study: error: cannot write to --out .*file\.txt/sub: Not a directory$"),
    (["--dask", "udp://x"], r"^modgraph study: error: --dask expects 'local' or a scheduler address"),
    (["--workers", "0"], r"^modgraph study: error: --workers must be at least 1, got 0$"),
])
def test_cli_errors_are_one_line_and_come_before_any_compute(tmp_path, capsys, args, match):
    _tiny(tmp_path, 1)
    (tmp_path / "file.txt").write_text("")
    spec = _spec(tmp_path, ["modularity"], seeds=1)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "o")]
    assert main(["study", str(spec), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    import re
    assert re.search(match, err), err
    assert not list(tmp_path.glob("o/runs/*"))                         # nothing computed
