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


def test_second_setup_does_no_work():
    """`make setup` on an installed tree is a no-op (the install stamp is newer than pyproject)."""
    t0 = time.perf_counter()
    repo = Path(__file__).resolve().parents[2]
    res = subprocess.run(["make", "-s", "setup"], capture_output=True, text=True, timeout=60, cwd=repo)
    assert res.returncode == 0, res.stderr
    assert "pip install" not in res.stdout and time.perf_counter() - t0 < 15
    assert subprocess.run(["make", "-q", "setup"], cwd=repo).returncode == 0
