import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modgraph.cli import main
from modgraph.io import save
from modgraph.testing import random_network

BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is blocked in this test")
    sys.meta_path.insert(0, _Block())
""")


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "net.h5"
    save(random_network([4, 6, 2], density=0.5, seed=0), path)
    return path


def test_info_json(net_file, capsys):
    assert main(["info", str(net_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["widths"] == [4, 6, 2] and out["source_format"] == "modgraph-hdf5"
    assert [r["n_in"] for r in out["layers"]] == [4, 6]
    assert out["n_edges"] == sum(r["n_edges"] for r in out["layers"])


def test_info_table(net_file, capsys):
    assert main(["info", str(net_file)]) == 0
    out = capsys.readouterr().out
    assert "[modgraph-hdf5]" in out and "widths 4-6-2" in out


def test_info_bad_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    assert main(["info", str(bad)]) == 2
    assert "x.onnx" in capsys.readouterr().err


def test_modgraph_works_with_torch_blocked(net_file):
    code = BLOCK_TORCH + textwrap.dedent(f"""
        import pkgutil, importlib, modgraph
        try:
            import torch
        except ImportError:
            pass
        else:
            raise SystemExit("torch was not blocked")
        for m in pkgutil.walk_packages(modgraph.__path__, "modgraph."):
            importlib.import_module(m.name)
        from modgraph.cli import main
        raise SystemExit(main(["info", {str(net_file)!r}, "--json"]))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["widths"] == [4, 6, 2]


BLOCK_TORCH_AND_TRAINERS = textwrap.dedent("""
    import importlib.abc, sys
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "trainers"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, _Block())
""")


def test_analyze_scores_against_a_task_spec_without_trainers_or_torch(tmp_path):
    """`modgraph analyze --truth SPEC` derives the ground truth on the graph side (issue 13)."""
    from modgraph.testing import sculpted_networks

    net_path = tmp_path / "net.h5"
    save(sculpted_networks()["[4,2,4] 1 HL"][0], net_path)           # no ground truth in its metadata
    spec = Path(__file__).resolve().parents[2] / "data" / "tasks" / "input-separable.json"
    code = BLOCK_TORCH_AND_TRAINERS + textwrap.dedent(f"""
        import json, sys
        for blocked in ("torch", "trainers", "trainers.tasks"):
            try:
                __import__(blocked)
            except ImportError:
                pass
            else:
                raise SystemExit(blocked + " was not blocked")
        import modgraph
        from modgraph.cli import main
        rc = main(["analyze", {str(net_path)!r}, "--truth", {str(spec)!r}, "--json"])
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "trainers"))
        print(json.dumps({{"rc": rc, "leaked": leaked}}))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    *analysis, tail = res.stdout.strip().splitlines()
    assert json.loads(tail) == {"rc": 0, "leaked": []}
    doc = json.loads("\n".join(analysis))
    truth = doc["ground_truth"]
    assert truth["task"] == "input-separable" and truth["success"] == ["input_separability"]
    assert truth["input_groups"] == [[0, 1], [2, 3]]
    assert [(f["name"], f["gate"], f["inputs"]) for f in truth["sub_functions"]] == [
        ("a", "XOR", [0, 1]), ("na", "XNOR", [0, 1]), ("b", "XOR", [2, 3]), ("nb", "XNOR", [2, 3])]
    assert doc["scores"]["success"] is True
    assert doc["scores"]["criteria"]["input_separability"]["evidence"]["found"] == [[0, 1], [2, 3]]


def test_second_setup_does_no_work():
    """`make setup` on an installed tree is a no-op (the install stamp is newer than pyproject)."""
    t0 = time.perf_counter()
    repo = Path(__file__).resolve().parents[2]
    res = subprocess.run(["make", "-s", "setup"], capture_output=True, text=True, timeout=60, cwd=repo)
    assert res.returncode == 0, res.stderr
    assert "pip install" not in res.stdout and time.perf_counter() - t0 < 15
    assert subprocess.run(["make", "-q", "setup"], cwd=repo).returncode == 0
