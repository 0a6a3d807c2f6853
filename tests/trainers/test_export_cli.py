"""Export (HDF5 + ONNX + config.json) and the modgraph-train command."""
import json
import re

import numpy as np
import onnxruntime as ort
import pytest
import torch

from modgraph.io import load
from trainers.cli import main
from trainers.config import task_train_config
from trainers.export import export_run, to_network
from trainers.model import MaskedMLP
from trainers.prune import edge_masks
from trainers.sculpt import SculptConfig, sculpt_grid
from trainers.tasks import load_task


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    task = load_task("[6,3,3,3]")
    x, y = task.truth_table()
    cfg = SculptConfig(train=task_train_config(task, 2), unit_steps=(30.0,), edge_steps=(1.0,))
    res = sculpt_grid(x, y, [6, 24, 24, 3], config=cfg, seed=2)
    out = tmp_path_factory.mktemp("run")
    paths = export_run(res, task, out, config={"note": "test"})
    return task, res, paths


def test_onnx_reproduces_pytorch_outputs(exported):
    task, res, paths = exported
    x, _ = task.truth_table()
    sess = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    want = res.net.forward(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_hdf5_loads_to_the_same_weights_masks_and_metadata(exported):
    task, res, paths = exported
    net = load(paths["hdf5"])
    assert net.widths == (6, 24, 24, 3) and [l.activation for l in net.layers] == ["relu", "relu", "sigmoid"]
    for layer, got in enumerate(net.layers):
        np.testing.assert_array_equal(got.mask, res.net.weight(layer, res.net.mask)[0].numpy() != 0)
        np.testing.assert_array_equal(got.dense(), res.net.weight(layer)[0].numpy())
        np.testing.assert_array_equal(got.bias, res.net.bias(layer)[0].numpy())
    meta = net.metadata
    assert meta["ground_truth"] == task.ground_truth() and meta["task"]["id"] == "[6,3,3,3]"
    assert meta["accuracy"] == res.accuracy and meta["selected"]["edges"] == net.summary()["n_edges"] == res.edges
    assert meta["pruning_history"] == res.history and meta["config"] == {"note": "test"}
    assert meta["bias_masks"][0] == res.net.bias(0, res.net.mask)[0].int().tolist()
    assert json.loads(paths["config"].read_text()) == {"note": "test"}
    assert net.input_names == ("x1", "x2", "x3", "x4", "x5", "x6") and net.layers[-1].unit_names == ("y1", "y2", "y3")
    onnx_net = load(paths["onnx"])
    x, _ = task.truth_table()
    np.testing.assert_allclose(onnx_net.forward(x), net.forward(x), rtol=0, atol=1e-6)


def test_the_onnx_export_carries_the_ground_truth(exported):
    """docs/trainers.md, README: both exports carry it, so no --truth is needed for either."""
    from modgraph.analyze import analyze_file
    task, _, paths = exported
    for kind in ("hdf5", "onnx"):
        a = analyze_file(paths[kind], method="sculpting", seed=0)
        assert a.truth is not None and a.truth.input_groups == task.ground_truth()["input_groups"], kind


def test_a_surviving_weight_that_is_exactly_zero_stays_an_edge():
    net = MaskedMLP([3, 4, 2], seed=0)
    net.set_mask(edge_masks(net, torch.tensor([50.0])))
    keep = torch.nonzero(net.weight(0, net.mask)[0])[0]
    net.weight(0)[0, keep[0], keep[1]] = 0.0            # trained to exactly 0, mask still 1
    layered = to_network(net)
    assert layered.layers[0].mask[keep[0], keep[1]] and layered.summary()["n_edges"] == int(net.edges()[0])


def test_cli_trains_and_exports(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["boolean", "--task", "input-separable", "--hidden", "12", "--seed", "1", "--out", str(out),
                 "--pu", "30", "--pe", "2", "--quiet"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "network.h5", "network.onnx"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["task"] == "[4,2,4]" and cfg["widths"] == [4, 12, 4] and cfg["sculpt"]["unit_steps"] == [30.0]
    assert cfg["sculpt"]["train"]["lr"] == 0.05 and cfg["sculpt"]["train"]["batch_size"] == 8
    assert "accuracy 100.00 %" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--task", "no-such-task"], "unknown task 'no-such-task'; give a spec file"),
    (["--task", "[4,2,4]", "--hidden", "24,0"], "--hidden: every width must be a positive integer, found '24,0'"),
    (["--task", "[4,2,4]", "--hidden", "a,b"], "--hidden: expected comma-separated positive integers"),
    (["--task", "[4,2,4]", "--pe", "-0.5"], r"--pe: every step must be a percentage in \(0, 100\), found '-0.5'"),
    (["--task", "[4,2,4]", "--pu", "120"], r"--pu: every step must be a percentage in \(0, 100\)"),
    (["--task", "[4,2,4]", "--lr", "-1"], "--lr: expected a positive number, found -1.0"),
    (["--task", "[4,2,4]", "--noise", "-0.1"], "--noise: expected a number >= 0, found -0.1"),
    (["--task", "[4,2,4]", "--gate", "1.5"], r"--gate: expected a fraction in \(0, 1\], found 1.5"),
    (["--task", "[4,2,4]", "--grid", "--pu", "5"], "--grid runs the spec's full"),
])
def test_cli_bad_options_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["boolean", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modgraph-train boolean: error: ")
    assert re.search(message, err), err
    assert not out.exists()


def test_cli_refuses_an_out_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep")
    assert main(["boolean", "--task", "[4,2,4]", "--out", str(target)]) == 2
    assert "--out: expected a folder, found the file" in capsys.readouterr().err and target.read_text() == "keep"


def test_cli_bad_spec_file_names_file_and_problem(tmp_path, capsys):
    spec = tmp_path / "cyc.json"
    spec.write_text(json.dumps({"id": "[c]", "inputs": 2, "outputs": ["f"], "functions": {
        "f": {"gate": "AND", "args": ["g", "x1"]}, "g": {"gate": "NOT", "args": ["f"]}}}))
    assert main(["boolean", "--task", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "cyc.json: functions.f: expected an acyclic definition, found a cycle f -> g -> f" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_lists_tasks(capsys):
    assert main(["tasks", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 38 and {"id": "[4,1,2,16]", "name": "reused"}.items() <= listed[
        [t["id"] for t in listed].index("[4,1,2,16]")].items()
    assert main(["tasks"]) == 0
    assert "[8,2,1,2,16]     hierarchy-u8" in capsys.readouterr().out
