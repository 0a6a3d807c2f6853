"""Issue 16, CLI half: bad command lines, unwritable outputs, unreadable inputs and Ctrl-C give one
line and an exit code, before anything is computed; ``--out`` is complete or absent."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import modgraph.analyze
from modgraph.cli import main
from modgraph.cli_args import EXIT_CODES
from modgraph.io import save
from modgraph.testing import sculpted_networks

NET = sculpted_networks()["[6,3,3,3]"][0]
OUTPUTS = ["analysis.json", "modules.png", "modules.svg", "network.png", "network.svg"]


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "net.h5"
    save(NET, path)
    return path


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the analysis starts: every check must come first."""
    def boom(*a, **k):
        raise AssertionError("analysis started before the command line was checked")
    monkeypatch.setattr(modgraph.analyze, "analyze_file", boom)


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err
    return err


@pytest.mark.parametrize("case", ["existing file", "inside a file", "missing parent"])
def test_bad_out_is_one_line_before_any_compute(tmp_path, net_file, capsys, no_compute, case):
    (tmp_path / "afile").write_text("x")
    out = {"existing file": tmp_path / "afile", "inside a file": tmp_path / "afile" / "sub",
           "missing parent": tmp_path / "nope" / "sub"}[case]
    assert main(["analyze", str(net_file), "--out", str(out)]) == 2
    _one_line_error(capsys, "modgraph analyze: error: --out: ", {
        "existing file": f"expected a folder, found the file '{out}'",
        "inside a file": f"'{out}' is inside the file '{tmp_path / 'afile'}', not a folder",
        "missing parent": f"the folder '{tmp_path / 'nope'}' does not exist (create it first)"}[case])
    assert not (tmp_path / "nope").exists()


def test_out_holding_other_files_is_refused_not_replaced(tmp_path, net_file, capsys, no_compute):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["analyze", str(net_file), "--out", str(out)]) == 2
    _one_line_error(capsys, "holds files modgraph analyze did not write (notes.txt)")
    assert (out / "notes.txt").read_text() == "keep me"


@pytest.fixture
def shared_dir():
    """A folder an unprivileged user can reach (pytest's tmp_path is private to its owner)."""
    d = Path(tempfile.mkdtemp(prefix="modgraph-perm-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _run_unprivileged(args, cwd):
    """Run ``modgraph`` as an ordinary user: as root (CI containers) permissions would not bite."""
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    home.chmod(0o777)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MPLCONFIGDIR": str(home), "HOME": str(home)}
    extra = {"user": 65534, "group": 65534} if os.geteuid() == 0 else {}
    return subprocess.run([sys.executable, "-m", "modgraph.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **extra)


def test_unreadable_input_and_unwritable_out_are_one_line(shared_dir):
    net = shared_dir / "net.h5"
    save(NET, net)
    net.chmod(0o644)
    locked = shared_dir / "locked.h5"
    shutil.copy(net, locked)
    locked.chmod(0o000)
    ro = shared_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for args, want in [(["info", str(locked)], "locked.h5: cannot read: Permission denied"),
                       (["analyze", str(locked)], "locked.h5: cannot read: Permission denied"),
                       (["analyze", str(net), "--out", str(ro / "out")], f"--out: cannot write in '{ro}': Permission denied"),
                       (["analyze", str(net), str(net), "--method", "sbm,modularity", "--out", str(ro / "out")],
                        f"--out: cannot write in '{ro}': Permission denied")]:
        r = _run_unprivileged(args, shared_dir)
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and want in r.stderr, r.stderr
    assert list(ro.iterdir()) == []
    # several runs: the unreadable file is an error row (one line), the other run goes on
    r = _run_unprivileged(["analyze", str(net), str(locked), "--quiet"], shared_dir)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    bad = [line for line in r.stderr.splitlines() if "locked.h5" in line]
    assert len(bad) == 1 and "Permission denied" in bad[0], r.stderr
    assert "6 modules" in r.stdout


def test_unknown_option_key_lists_the_valid_keys(net_file, capsys, no_compute):
    assert main(["analyze", str(net_file), "--method", "spectral", "--option", "clusters=4"]) == 2
    _one_line_error(capsys, "no chosen method has an option 'clusters'", "spectral: k (int, default 12)",
                    "n_init", "solver", "dense_limit")
    assert main(["analyze", str(net_file), "--method", "sbm", "--option", "sbm.restarts=2"]) == 2
    _one_line_error(capsys, "method 'sbm' has no option 'restarts'; its options are: weighted (bool",
                    "n_restarts (int, default 3)")
    assert main(["analyze", str(net_file), "--option", "spectral.k=4"]) == 2
    _one_line_error(capsys, "method 'spectral' is not among --method (sculpting)")
    assert main(["analyze", str(net_file), "--method", "spectral", "--option", "k=four"]) == 2
    _one_line_error(capsys, "option 'k': expected int, found 'four'")
    assert main(["analyze", str(net_file), "--option", "theta"]) == 2
    _one_line_error(capsys, "--option expects KEY=VALUE")


def test_options_reach_the_method_typed(net_file, capsys):
    assert main(["analyze", str(net_file), "--method", "spectral,sbm", "--option", "k=3", "--option",
                 "sbm.weighted=true", "--json", "--quiet"]) == 0
    import json
    runs = json.loads(capsys.readouterr().out)
    assert [r["partition"]["method"] for r in runs] == ["spectral", "sbm"]
    assert runs[0]["partition"]["n_modules"] == 3


def test_detect_itself_refuses_unknown_options():
    from modgraph.detect import detect
    from modgraph.graph import build_unit_graph
    with pytest.raises(ValueError, match=r"method 'modularity' has no option 'k'; its options are: weighted"):
        detect(build_unit_graph(NET), method="modularity", seed=0, k=3)


def test_ctrl_c_is_one_line_and_exit_130(net_file, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(modgraph.analyze, "analyze_file", interrupted)
    assert main(["analyze", str(net_file)]) == 130
    _one_line_error(capsys, "modgraph analyze: interrupted")


def test_an_os_error_while_writing_leaves_no_out(tmp_path, net_file, capsys, monkeypatch):
    """Disk full at the third file of the write phase: nothing under --out, no staging left over."""
    real, calls = Path.write_bytes, []

    def flaky(self, data):
        calls.append(self.name)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(self))
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", flaky)
    out = tmp_path / "out"
    assert main(["analyze", str(net_file), "--out", str(out), "--quiet"]) == 2
    _one_line_error(capsys, "No space left on device")
    assert len(calls) == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]


def test_a_rerun_replaces_an_earlier_out_as_a_whole(tmp_path, net_file, capsys):
    import json
    out = tmp_path / "out"
    assert main(["analyze", str(net_file), "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    assert main(["analyze", str(net_file), "--method", "modularity", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    assert json.loads((out / "analysis.json").read_text())["partition"]["method"] == "modularity"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.h5", "out"]


SLOW_WRITER = """
import sys, time
from pathlib import Path
real = Path.write_bytes
def slow(self, data):
    print("writing", self.name, file=sys.stderr, flush=True)
    time.sleep(0.4)
    return real(self, data)
Path.write_bytes = slow
from modgraph.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigint_during_the_write_phase_leaves_no_out(tmp_path, net_file):
    import signal
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, "analyze", str(net_file), "--out", str(out), "--quiet"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines = []
    while len(lines) < 3:                           # two files written into the staging folder
        line = p.stderr.readline()
        assert line, "the command ended before writing"
        lines.append(line)
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(timeout=60) == 130, rest
    assert rest.strip().splitlines()[-1] == "modgraph analyze: interrupted" and "Traceback" not in rest
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["net.h5"]


def test_method_takes_repeats_and_comma_lists_in_any_order(tmp_path, capsys):
    from modgraph.io import export_onnx
    onnx = tmp_path / "net.onnx"
    export_onnx(NET, onnx)
    assert main(["analyze", "--method", "sbm", str(onnx), "--json", "--quiet"]) == 0     # the file is not swallowed
    assert capsys.readouterr().out.count('"method": "sbm"') == 1
    assert main(["analyze", "--method", "sbm,modularity", str(onnx), "--method", "sbm", "--method", "sculpting",
                 "--json", "--quiet"]) == 0
    import json
    runs = json.loads(capsys.readouterr().out)
    assert [r["partition"]["method"] for r in runs] == ["sbm", "modularity", "sculpting"]
    assert main(["analyze", str(onnx), "--method", "sbm,astrology"]) == 2
    _one_line_error(capsys, "--method: unknown method 'astrology'; choose one of modularity, nested-sbm, sbm")


def test_truth_takes_task_ids_and_names(net_file, capsys):
    import json
    for truth in ("[6,3,3,3]", "[6, 3, 3, 3]", "both"):
        assert main(["analyze", str(net_file), "--truth", truth, "--json", "--seed", "0"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert d["scores"]["success"] is True and d["ground_truth"]["n_inputs"] == 6
    assert main(["analyze", str(net_file), "--truth", "[9,9]"]) == 2
    _one_line_error(capsys, "--truth [9,9]: unknown task '[9,9]'", "[6,3,3,3] (both)")


def test_help_lists_methods_option_keys_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    from modgraph.detect import DETECTORS, method_options
    for m in DETECTORS:
        assert f"  {m}: " in text
        assert all(k in text for k in method_options(m))
    assert "130  interrupted" in text and EXIT_CODES.splitlines()[1] in text


def test_a_slow_step_says_so_and_summaries_come_after_the_bar(tmp_path, net_file, monkeypatch):
    """A detector that takes 2.5 s gets a stage line and its time; the per-run summaries follow
    the bar's last state instead of cutting through it (stdout and stderr merged, as in a terminal)."""
    slow = """
import sys, time
from modgraph.detect import DETECTORS
fast = DETECTORS["modularity"]
def slow(graph, **kw):
    time.sleep(2.5)
    return fast(graph, **kw)
DETECTORS["modularity"] = slow
from modgraph.cli import main
sys.exit(main(sys.argv[1:]))
"""
    r = subprocess.run([sys.executable, "-c", slow, "analyze", str(net_file), "--method", "modularity", "--out",
                        str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    text = r.stdout
    assert text.count("net.h5 modularity: detect (modularity) ...") == 1
    assert text.count("net.h5 modularity: detect (modularity) done in 2.") == 1
    assert "load" not in text and "render" not in text and "write ..." not in text    # quick steps print nothing
    other = tmp_path / "other.h5"
    save(NET, other)
    r = subprocess.run([sys.executable, "-c", slow, "analyze", str(net_file), str(other), "--method",
                        "sculpting,modularity"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout
    text = r.stdout
    assert text.index("4/4") < text.index("method sculpting") and text.count("method sculpting") == 2
