"""Reads through libhdf5 tried in a forked child first (modgraph.io.isolate): the result equals the
in-process read array for array; warnings and errors are those of the in-process read; a hang, a crash
or a kill is a FormatError naming the file; a file changed meanwhile is refused; no temporary file is
made; no child is left; the libhdf5 hang file is refused in seconds by load and by `modgraph info`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from modgraph.dag import DagNetwork
from modgraph.dag_builder import DagBuilder
from modgraph.errors import AssumptionWarning, FormatError, UnsupportedOpError
from modgraph.io import Limits, load, read_hdf5, save, using_limits
from modgraph.io.isolate import run_isolated
from modgraph.network import Layer, LayeredNetwork

ROOT = Path(__file__).resolve().parents[3]
HANG = ROOT / "tests/modgraph/io/fuzz_findings/hdf5-heap-hang.h5"


@pytest.fixture
def tmpdir_only(tmp_path, monkeypatch):
    """Any temporary file the isolation made would go to a folder of its own: checked empty afterwards."""
    folder = tmp_path / "isolate-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    _, probe = tempfile.mkstemp(prefix="modgraph-isolate-")
    assert Path(probe).parent == folder
    os.unlink(probe)
    yield folder
    assert list(folder.glob("modgraph-isolate-*")) == []             # (keras/torch keep caches here too)


def _chain():
    rng = np.random.default_rng(3)
    w1 = rng.normal(size=(5, 4)).astype(np.float32) * (rng.random((5, 4)) < 0.6)
    mask = w1 != 0
    mask[0, 0] = True                                                # a kept weight of 0.0
    w1[0, 0] = 0.0
    layers = [Layer.from_dense(w1, rng.normal(size=5).astype(np.float32), activation="leaky_relu", alpha=0.3,
                               mask=mask, unit_names=[f"h{i}" for i in range(5)]),
              Layer.from_dense(rng.normal(size=(2, 5)), activation="softmax", unit_names=["no", "yes é"])]
    return LayeredNetwork(layers, input_names=list("abcd"), metadata={"task": {"k": [1, 2.5, None]}, "seed": 7})


def _dag():
    rng = np.random.default_rng(4)
    r = lambda *s: rng.normal(size=s).astype(np.float32)             # noqa: E731
    b = DagBuilder()
    x = b.input("input", channels=3, spatial=(6, 6))
    c = b.activation(b.conv("c1", x, r(4, 3, 3, 3), r(4), pads=(1, 1, 1, 1)), "relu")
    a = b.add("add", [c, b.max_pool(c, 3, strides=1, pads=(1, 1, 1, 1))])
    g = b.activation(b.conv("g", a, r(2, 4, 1, 1)), "sigmoid", assumed=True)
    h = b.dense("fc", b.flatten(b.global_avg_pool(b.concat([a, g])), order="CHW"), r(3, 6), r(3))
    return b.build(outputs=[b.activation(h, "softmax")], metadata={"task": "t"}, source_format="onnx")


def _same_array(a, b):
    if a is None or b is None:
        return a is None and b is None
    if hasattr(a, "tocsr"):
        return _same_array(a.data, b.data) and _same_array(a.indices, b.indices) and _same_array(a.indptr, b.indptr)
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _same_value(a, b):
    if isinstance(a, (np.ndarray,)) or hasattr(a, "tocsr"):
        return _same_array(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def assert_same_network(a, b):
    """Every field of the two networks, arrays byte for byte with their dtypes."""
    assert type(a) is type(b)
    assert (a.source, a.source_format, a.metadata) == (b.source, b.source_format, b.metadata)
    if isinstance(a, LayeredNetwork):
        assert a.input_names == b.input_names and len(a.layers) == len(b.layers)
        for la, lb in zip(a.layers, b.layers):
            assert (la.activation, la.alpha, la.unit_names, la.kind) == (lb.activation, lb.alpha, lb.unit_names, lb.kind)
            assert _same_array(la.weight, lb.weight) and _same_array(la.bias, lb.bias)
        return
    assert a.outputs == b.outputs and _same_array(a.unit_offsets, b.unit_offsets)
    assert len(a.steps) == len(b.steps) and len(a.groups) == len(b.groups)
    for sa, sb in zip(a.steps, b.steps):
        assert (sa.op, sa.inputs, sa.group) == (sb.op, sb.inputs, sb.group) and _same_value(dict(sa.params), dict(sb.params))
    for ga, gb in zip(a.groups, b.groups):
        for field in ga.__dataclass_fields__:
            assert _same_value(getattr(ga, field), getattr(gb, field)), (ga.name, field)
    for ma, mb in zip(a.tensor_maps, b.tensor_maps):
        for field in ma.__dataclass_fields__:
            assert _same_value(getattr(ma, field), getattr(mb, field)), field


@pytest.mark.parametrize("make", [_chain, _dag], ids=["chain", "dag"])
def test_isolated_load_equals_the_in_process_load(tmp_path, tmpdir_only, make):
    save(make(), tmp_path / "net.h5")
    inside = load(tmp_path / "net.h5", isolate=False)
    isolated = load(tmp_path / "net.h5")
    assert_same_network(inside, isolated)
    assert_same_network(inside, read_hdf5(tmp_path / "net.h5"))
    with using_limits(Limits(isolate=False)):
        assert_same_network(inside, read_hdf5(tmp_path / "net.h5"))
    assert isinstance(isolated, DagNetwork if make is _dag else LayeredNetwork)


def test_isolated_loads_from_several_threads_at_once(tmp_path, tmpdir_only):
    """Forks from worker threads (a Dask worker's, a thread pool's) while other threads read with h5py."""
    from concurrent.futures import ThreadPoolExecutor

    save(_chain(), tmp_path / "net.h5")
    want = load(tmp_path / "net.h5", isolate=False)
    with ThreadPoolExecutor(4) as pool:
        nets = list(pool.map(lambda i: load(tmp_path / "net.h5", isolate=bool(i % 2)), range(12)))
    for net in nets:
        assert_same_network(want, net)


def test_isolated_keras_reads_equal_the_in_process_reads(tmp_path, tmpdir_only):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    L = keras.layers
    inp = keras.Input((6, 6, 2))
    c = L.Conv2D(3, 3, padding="same", activation="relu", name="c1")(inp)
    out = L.Dense(2, name="fc")(L.Flatten()(L.Concatenate()([c, L.MaxPooling2D(1)(c)])))
    models = {"dag": keras.Model(inp, out), "chain": keras.Sequential([keras.Input((3,)), L.Dense(4, activation="tanh"),
                                                                     L.Dense(2)])}
    for name, model in models.items():
        for suffix in (".h5", ".keras"):
            path = tmp_path / f"{name}{suffix}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.save(path)
            assert_same_network(load(path, isolate=False), load(path))


def test_warnings_and_format_errors_come_back_as_they_were(tmp_path, tmpdir_only):
    save(_chain(), tmp_path / "net.h5")

    def warns():
        warnings.warn("layer order assumed", AssumptionWarning)
        return read_hdf5(tmp_path / "net.h5")

    with pytest.warns(AssumptionWarning, match="^layer order assumed$") as record:
        run_isolated(tmp_path / "net.h5", warns)
    assert record[0].filename == __file__

    def refuses():
        raise UnsupportedOpError("f.onnx", "node 3", "Foo", ["Gemm", "Relu"], nodes=["node 3", "node 4"])

    with pytest.raises(UnsupportedOpError) as info:
        run_isolated(tmp_path / "net.h5", refuses)
    want = UnsupportedOpError("f.onnx", "node 3", "Foo", ["Gemm", "Relu"], nodes=["node 3", "node 4"])
    assert str(info.value) == str(want)
    assert (info.value.path, info.value.place, info.value.op, info.value.supported, info.value.nodes) == \
        (want.path, want.place, want.op, want.supported, want.nodes)

    def bad_option():
        raise ValueError("activations can be given only for files that store none")

    with pytest.raises(ValueError, match="^activations can be given only"):
        run_isolated(tmp_path / "net.h5", bad_option)


def test_a_hang_a_crash_and_a_kill_are_format_errors_naming_the_file(tmp_path, tmpdir_only, capfd):
    path = tmp_path / "net.h5"
    save(_chain(), path)
    start = time.perf_counter()
    with using_limits(Limits(read_timeout_s=0.5)), \
            pytest.raises(FormatError, match=r"net\.h5: HDF5 read .* no result after 0\.5 s.*likely damaged.*"
                                             r"raise MODGRAPH_READ_TIMEOUT"):
        run_isolated(path, lambda: time.sleep(60))
    assert time.perf_counter() - start < 5
    with pytest.raises(FormatError, match=r"net\.h5: .*crashed \(SIGSEGV\).*likely damaged"):
        run_isolated(path, lambda: os.kill(os.getpid(), signal.SIGSEGV))
    assert "Fatal Python error" not in capfd.readouterr().err         # no faulthandler dump from the child
    with pytest.raises(FormatError, match=r"net\.h5: .*killed \(SIGKILL; out of memory\?"):
        run_isolated(path, lambda: os.kill(os.getpid(), signal.SIGKILL))


def test_a_file_changed_during_the_isolated_read_is_refused(tmp_path, tmpdir_only):
    path = tmp_path / "net.h5"
    save(_chain(), path)

    def grows():
        with open(path, "ab") as fh:
            fh.write(b"\0")
        return read_hdf5(path)

    with pytest.raises(FormatError, match=r"net\.h5: file: .*changed during the isolated read"):
        run_isolated(path, grows)


def test_an_interrupt_while_waiting_stops_the_child_and_removes_the_temporary_file(tmp_path, tmpdir_only):
    path = tmp_path / "net.h5"
    save(_chain(), path)

    def interrupt(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            run_isolated(path, lambda: time.sleep(60))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)                        # no child left behind


def test_isolation_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MODGRAPH_ISOLATE", "0")
    monkeypatch.setenv("MODGRAPH_READ_TIMEOUT", "7.5")
    lim = Limits.from_env()
    assert not lim.isolate and lim.read_timeout(2 * 10**9) == 7.5 + 120
    monkeypatch.setenv("MODGRAPH_ISOLATE", "yes")
    with pytest.raises(ValueError, match="MODGRAPH_ISOLATE='yes': expected 0"):
        Limits.from_env()


def _run(args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return proc, time.perf_counter() - start


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.h5"
    save(_chain(), path)
    return path


_LOAD = ("import modgraph.io, sys\n"
         "try:\n    modgraph.io.load(sys.argv[1])\n"
         "except modgraph.FormatError as err:\n    print('refused:', err)\n")


def test_load_refuses_the_libhdf5_hang_file_in_seconds(good_file):
    """Seconds beyond the same command on a good file (imports take seconds on a busy machine): the
    3 s time limit and a margin."""
    good, base = _run([sys.executable, "-c", _LOAD, str(good_file)])
    assert good.returncode == 0 and not good.stdout, good
    proc, seconds = _run([sys.executable, "-c", _LOAD, str(HANG)])
    assert proc.returncode == 0 and proc.stdout.startswith("refused: ") and "hdf5-heap-hang.h5" in proc.stdout, proc
    assert "likely damaged" in proc.stdout and seconds - base < 3 + 4, (seconds, base)


def test_modgraph_info_refuses_the_libhdf5_hang_file_with_one_line_and_exit_2(good_file):
    """Exit code 2: a bad input file (``modgraph --help``, docs/analysis.md)."""
    good, base = _run([sys.executable, "-m", "modgraph.cli", "info", str(good_file)])
    assert good.returncode == 0, good
    proc, seconds = _run([sys.executable, "-m", "modgraph.cli", "info", str(HANG)])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc
    errors = [line for line in lines if "error" in line]           # (the other lines are the stage log)
    assert errors == [lines[-1]] and lines[-1].startswith("modgraph info: error: "), proc.stderr
    assert "hdf5-heap-hang.h5" in lines[-1] and "MODGRAPH_READ_TIMEOUT" in lines[-1], proc.stderr
    assert seconds - base < 3 + 4, (seconds, base)
