"""Issue 16, modgraph-train: --out checked before training, a closed pipe and Ctrl-C are quiet."""
import signal
import subprocess
import sys

import pytest

import trainers.sculpt
from trainers.cli import main


@pytest.fixture
def no_training(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("training started before --out was checked")
    monkeypatch.setattr(trainers.sculpt, "sculpt_grid", boom)


@pytest.mark.parametrize("case", ["inside a file", "existing file"])
def test_bad_out_is_refused_before_training(tmp_path, capsys, no_training, case):
    (tmp_path / "afile").write_text("keep")
    out = tmp_path / "afile" / ("sub" if case == "inside a file" else "")
    assert main(["boolean", "--task", "[4,2,4]", "--out", str(out).rstrip("/"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("modgraph-train boolean: error: --out: ") and len(err.splitlines()) == 1
    assert (tmp_path / "afile").read_text() == "keep"


def test_demo_checks_its_out_first(tmp_path, capsys, monkeypatch):
    import trainers.demo
    monkeypatch.setattr(trainers.demo, "run_demo", lambda out: pytest.fail("demo started"))
    (tmp_path / "afile").write_text("")
    assert main(["demo", "--out", str(tmp_path / "afile" / "demo")]) == 2
    assert "is inside the file" in capsys.readouterr().err


def test_study_demo_checks_its_out_first(tmp_path, capsys, monkeypatch):
    import trainers.study_demo
    monkeypatch.setattr(trainers.study_demo, "run_study_demo", lambda *a, **k: pytest.fail("study-demo started"))
    (tmp_path / "afile").write_text("")
    assert main(["study-demo", "--out", str(tmp_path / "afile" / "x")]) == 2
    assert "is inside the file" in capsys.readouterr().err


def test_ctrl_c_in_training_is_one_line_and_130(tmp_path, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(trainers.sculpt, "sculpt_grid", interrupted)
    assert main(["boolean", "--task", "[4,2,4]", "--out", str(tmp_path / "o"), "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == "modgraph-train boolean: interrupted"
    assert not (tmp_path / "o").exists()


def test_tasks_into_a_closed_pipe_is_quiet():
    """``modgraph-train tasks | head``: the reader is gone before we write; no traceback."""
    p = subprocess.Popen([sys.executable, "-m", "trainers.cli", "tasks"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.close()                              # no reader left: every write is EPIPE
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 128 + signal.SIGPIPE and err == ""



@pytest.mark.parametrize("prog, command", [("modgraph", "analyze"), ("modgraph", "significance"),
                                           ("modgraph", "export"), ("modgraph-train", "boolean"),
                                           ("modgraph-train", "mnist-clusterability"),
                                           ("modgraph-train", "mnist-sculpt"), ("modgraph-train", "mnist-cnn")])
def test_every_command_has_the_one_seed_default(prog, command, capsys):
    import re

    from modgraph.cli import main as modgraph_main
    from modgraph.cli_args import DEFAULT_SEED
    with pytest.raises(SystemExit):
        (modgraph_main if prog == "modgraph" else main)([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(rf"--seed SEED [^-]*\(default {DEFAULT_SEED}\)", text), text
