"""Shipped Boolean tasks against closed-form definitions (spec §1.3), ground truth, spec errors."""
import itertools
import json

import numpy as np
import pytest

from modgraph.errors import FormatError
from modgraph.tasks import parse_task, read_task
from trainers.tasks import TASK_DIR, UnknownTaskError, list_tasks, load_task

A_ONES = {(0, 0, 1, 1), (1, 0, 1, 0), (1, 1, 0, 0)}
B_ONES = {(0, 1, 0, 1), (1, 0, 0, 1), (1, 1, 1, 1)}


def A(*bits):
    return int(tuple(bits) in A_ONES)


def B(*bits):
    return int(tuple(bits) in B_ONES)


def closed_form():
    """Task id -> (n, function row-bits -> output bits), written straight from spec §1.3."""
    forms = {
        "[4,2,4]": (4, lambda x: [x[0] ^ x[1], 1 - (x[0] ^ x[1]), x[2] ^ x[3], 1 - (x[2] ^ x[3])]),
        "[6,3,3,3]": (6, lambda x: [(x[0] & x[1]) | (x[2] & x[3]), (x[0] & x[1]) | (x[4] & x[5]),
                                    (x[2] & x[3]) | (x[4] & x[5])]),
        "[4,1,4]": (4, lambda x: [A(*x)] * 4),
    }
    for u in (1, 2, 4, 6, 8):
        forms[f"[4,1,2,{2 * u}]"] = (4, lambda x, u=u: [A(*x) & x[0], A(*x) & x[2]] * u)
        forms[f"[8,2,1,2,{2 * u}]"] = (8, lambda x, u=u: [A(*x[:4]) & (1 - B(*x[4:])),
                                                         (1 - A(*x[:4])) & B(*x[4:])] * u)
        for o, ident in enumerate(["[8,2,{}]", "[7,3,2,{}]", "[6,3,2,{}]", "[5,3,2,{}]", "[4,1,2,2,{}]"]):
            forms[ident.format(2 * u)] = (8 - o, lambda x, u=u: [A(*x[:4]), B(*x[-4:])] * u)
    return forms


def test_every_spec_task_is_shipped_once_and_matches_its_closed_form():
    forms = closed_form()
    tasks = list_tasks()
    assert sorted(t.id for t in tasks) == sorted(forms)            # 4 exemplars + sweeps, no duplicates
    for task in tasks:
        n, f = forms[task.id]
        x, y = task.truth_table()
        rows = list(itertools.product((0, 1), repeat=n))            # x1 most significant
        np.testing.assert_array_equal(x, np.array(rows, dtype=np.float32))
        np.testing.assert_array_equal(y, np.array([f(r) for r in rows], dtype=np.float32), err_msg=task.id)


def test_spot_checks_of_spec_section_9():
    _, y = load_task("[4,1,4]").truth_table()
    for col in y.T:
        assert np.flatnonzero(col).tolist() == [3, 10, 12]
    _, y = load_task("overlap-o4-u1").truth_table()               # even output = B(x1..x4)
    assert np.flatnonzero(y[:, 1]).tolist() == [5, 9, 15]


@pytest.mark.parametrize("name, groups", [
    ("[4,2,4]", [[0, 1], [2, 3]]), ("[6,3,3,3]", [[0, 1], [2, 3], [4, 5]]), ("reused", [[0, 1, 2, 3]]),
    ("none", [[0, 1, 2, 3]]), ("overlap-o0-u1", [[0, 1, 2, 3], [4, 5, 6, 7]]),
    ("overlap-o1-u2", [[0, 1, 2], [3], [4, 5, 6]]), ("overlap-o3-u1", [[0], [1, 2, 3], [4]]),
    ("overlap-o4-u8", [[0, 1, 2, 3]]), ("hierarchy-u4", [[0, 1, 2, 3], [4, 5, 6, 7]]),
])
def test_ground_truth_input_groups(name, groups):
    assert load_task(name).ground_truth()["input_groups"] == groups


def test_ground_truth_structure_is_plain_json_with_levels_reuse_and_output_groups():
    gt = load_task("hierarchy-u2").ground_truth()
    assert json.loads(json.dumps(gt)) == gt
    subs = {s["name"]: s for s in gt["sub_functions"]}
    assert {k: s["level"] for k, s in subs.items()} == {"A": 1, "B": 1, "M": 2, "P": 3, "Q": 3}
    assert subs["M"]["inputs"] == list(range(8)) and subs["M"]["outputs"] == [0, 1, 2, 3]
    assert subs["A"]["n_output_functions"] == 2 and subs["P"]["n_output_functions"] == 1
    assert subs["B"]["minterms"] == ["0101", "1001", "1111"]
    assert gt["output_groups"] == [[0, 2], [1, 3]] and gt["n_levels"] == 3
    assert load_task("[4,2,4]").ground_truth()["output_groups"] == [[0, 1], [2, 3]]   # declared in the spec
    both = load_task("[6,3,3,3]").ground_truth()
    assert both["output_groups"] == [[0], [1], [2]]
    assert [s["outputs"] for s in both["sub_functions"][:3]] == [[0, 1], [0, 2], [1, 2]]
    reused = {s["name"]: s for s in load_task("reused").ground_truth()["sub_functions"]}
    assert reused["A"]["n_output_functions"] == 2 and reused["A"]["consumers"] == ["p", "q"]


def test_lookup_by_id_name_alias_and_file():
    assert load_task(" [4, 1, 2, 16] ").name == "reused"
    assert load_task("reuse-u8").id == "[4,1,2,16]"
    assert load_task(TASK_DIR / "both.json").id == "[6,3,3,3]"
    with pytest.raises(UnknownTaskError, match=r"unknown task 'nope'; give a spec file \(\.json\) or one of: .*\[4,2,4\]"):
        load_task("nope")
    with pytest.raises(UnknownTaskError, match="task spec file .*missing.json' does not exist"):
        load_task("missing.json")


def _spec(functions, outputs=("f",), **extra):
    return {"id": "[t]", "inputs": ["x1", "x2"], "functions": functions, "outputs": list(outputs), **extra}


@pytest.mark.parametrize("functions, outputs, match", [
    ({"f": {"gate": "AND", "args": ["g", "x1"]}, "g": {"gate": "OR", "args": ["f", "x2"]}}, ["f"],
     r"functions\.\w: expected an acyclic definition, found a cycle (f -> g -> f|g -> f -> g)"),
    ({"f": {"gate": "AND", "args": ["x1", "zz"]}}, ["f"],
     r"functions\.f\.args\[1\]: expected a defined function or input name, found undefined name 'zz'"),
    ({"f": {"gate": "AND", "args": ["x1"]}}, ["f"],
     r"functions\.f\.args: expected at least 2 arguments for AND, found 1 \(wrong arity\)"),
    ({"f": {"gate": "NOT", "args": ["x1", "x2"]}}, ["f"],
     r"functions\.f\.args: expected exactly 1 argument for NOT, found 2 \(wrong arity\)"),
    ({"f": {"gate": "TABLE", "args": ["x1", "x2"], "minterms": ["01", ""]}}, ["f"],
     r"functions\.f\.minterms\[1\]: expected a bit string of length 2, found an empty minterm string"),
    ({"f": {"gate": "TABLE", "args": ["x1", "x2"], "minterms": ["011"]}}, ["f"],
     r"minterms\[0\]: expected a bit string of 2 characters 0/1 \(wrong arity\), found '011'"),
    ({"f": {"gate": "NAND", "args": ["x1", "x2"]}}, ["f"],
     r"functions\.f\.gate: expected one of AND, OR, XOR, XNOR, NOT, TABLE, found 'NAND'"),
    ({"f": {"gate": "AND", "args": ["x1", "x2"]}}, ["f", "h"],
     r"outputs\[1\]: expected a defined function or input name, found undefined name 'h'"),
])
def test_malformed_specs_name_the_problem(functions, outputs, match):
    with pytest.raises(FormatError, match=match):
        parse_task(_spec(functions, outputs))


def test_spec_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FormatError, match=r"bad\.json: file: expected valid JSON"):
        read_task(bad)
    bad.write_text(json.dumps(_spec({"f": {"gate": "XOR", "args": ["x1", "x2"]}}, output_groups=[[0], [0]])))
    with pytest.raises(FormatError, match=r"bad\.json: output_groups: expected a partition of the output indices"):
        read_task(bad)
    bad.write_text(json.dumps({**_spec({"f": {"gate": "XOR", "args": ["x1", "x2"]}}), "extra": 1}))
    with pytest.raises(FormatError, match=r"key 'extra': expected one of aliases, description"):
        read_task(bad)


def test_task_specs_and_ground_truth_need_no_torch():
    """The graph side derives ground truth from a spec without torch (modgraph never imports it)."""
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None\n"
            "from trainers.tasks import load_task\n"
            "gt = load_task('both').ground_truth(); print(gt['name'], gt['input_groups'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "both [[0, 1], [2, 3], [4, 5]]"


@pytest.mark.parametrize("training, match", [
    ({"lr": -0.1}, r"training\.lr: expected a positive number, found -0\.1"),
    ({"epochs": {"2": 2.5}}, r"training\.epochs\.2: expected a positive integer, found 2\.5"),
    ({"epochs": {"two": 5}}, r"training\.epochs\.two: expected a number of hidden layers as key"),
    ({"momentum": 0.9}, r"training\.momentum: expected one of lr, batch_size, epochs, found an unknown key"),
    ({"epochs": {"2": {"wide": 30}}}, r"training\.epochs\.2\.wide: expected a hidden width or \"\*\" as key"),
    ({"batch_size": {"3": {"48": 0}}}, r"training\.batch_size\.3\.48: expected a positive integer, found 0"),
    ({"epochs": {"2": {"*": [40]}}}, r"training\.epochs\.2\.\*: expected a positive integer, found \[40\]"),
])
def test_training_block_is_validated_with_the_spec(tmp_path, training, match):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_spec({"f": {"gate": "OR", "args": ["x1", "x2"]}}, training=training)))
    with pytest.raises(FormatError, match=r"t\.json: " + match):
        read_task(path)


def test_reused_trains_with_the_authors_per_run_settings():
    """Spec §3 "all others": the authors' per-run choices (released shell/exemplars/reused.sh),
    which change with the width as well as the depth."""
    from trainers.config import task_train_config

    task = load_task("reused")
    got = {tuple(h): (c.lr, c.batch_size, c.epochs) for h in
           ([24], [36], [48], [8, 8], [12, 12], [20, 20], [24, 24], [36, 36], [48, 48],
            [24, 24, 24], [36, 36, 36], [48, 48, 48]) for c in [task_train_config(task, h)]}
    assert got == {(24,): (0.1, 8, 40), (36,): (0.1, 8, 30), (48,): (0.1, 8, 20), (8, 8): (0.1, 16, 120),
                   (12, 12): (0.1, 8, 60), (20, 20): (0.1, 8, 40), (24, 24): (0.1, 8, 40),
                   (36, 36): (0.1, 8, 30), (48, 48): (0.1, 8, 20), (24, 24, 24): (0.1, 8, 40),
                   (36, 36, 36): (0.1, 8, 30), (48, 48, 48): (0.1, 16, 30)}
    # only the depth known, or unequal widths: the "*" entry; overrides still win
    assert (task_train_config(task, 2).epochs, task_train_config(task, [36, 48]).epochs) == (40, 40)
    assert task_train_config(task, [48, 48], epochs=7, batch_size=4).epochs == 7
    # a task without width entries is unchanged by the widths
    assert task_train_config(load_task("[4,2,4]"), [48, 48, 48]).epochs == 20


def test_published_runs_train_with_the_authors_settings_and_others_with_the_default(tmp_path):
    """Issue 15: every row of data/neural-sculpting-runs.csv (1,444 published runs) picks its own
    lr / batch / epochs; an unpublished seed of a published cell, or a task outside the published
    set, does not."""
    import csv

    from trainers.config import DEFAULTS, RUNS_CSV, published_run, task_train_config

    rows = list(csv.DictReader(open(RUNS_CSV, newline="")))
    assert len(rows) == 1444
    tasks = {}
    for r in rows:
        task = tasks.setdefault(r["project_task"], load_task(r["project_task"]))
        hidden = [int(r["width"])] * int(r["hidden_layers"])
        c = task_train_config(task, hidden, seed=int(r["seed"]))
        assert (c.lr, c.batch_size, c.epochs) == (float(r["lr"]), int(r["batch_size"]), int(r["epochs"])), r
    # one published run by hand: hierarchy u = 2 at 3 hidden layers of 36, seed 1 (CSV: 0.05, 32, 40)
    c = task_train_config(load_task("hierarchy-u2"), [36, 36, 36], seed=1)
    row = next(r for r in rows if (r["project_task"], r["hidden_layers"], r["width"], r["seed"])
               == ("hierarchy-u2", "3", "36", "1"))
    assert (c.lr, c.batch_size, c.epochs) == (float(row["lr"]), int(row["batch_size"]), int(row["epochs"]))
    # seed 3 was not published: the task's block (hierarchy-u2 has none for lr/batch/epochs -> defaults)
    assert published_run(load_task("hierarchy-u2"), [36, 36, 36], seed=3) is None
    c = task_train_config(load_task("hierarchy-u2"), [36, 36, 36], seed=3)
    assert (c.lr, c.batch_size, c.epochs) == (DEFAULTS["lr"], DEFAULTS["batch_size"], DEFAULTS["epochs"])
    # a task outside the published set, without a training block: the defaults for every seed
    spec = json.loads((TASK_DIR / "none.json").read_text())
    spec.pop("training", None)
    spec["name"], spec["id"], spec["aliases"] = "my-task", "[4,1,4]x", []
    (tmp_path / "my.json").write_text(json.dumps(spec))
    mine = read_task(tmp_path / "my.json")
    for seed in (0, 1, None):
        c = task_train_config(mine, [24], seed=seed)
        assert (c.lr, c.batch_size, c.epochs) == (0.05, 32, 15)
    # overrides still win over the published settings
    assert task_train_config(load_task("reuse-u4"), [24, 24], seed=0, epochs=7).epochs == 7


@pytest.mark.parametrize("text, match", [
    ("family,task\n", r"line 1: expected the header family,task_id,.*found family,task"),
    (",".join(["family", "task_id", "project_task", "arch", "hidden_layers", "width", "seed", "lr", "batch_size",
               "epochs"]) + "\nexemplar,x,none,a,1,24,0,0.05,eight,15\n", r"line 2: expected integer hidden_layers"),
    (",".join(["family", "task_id", "project_task", "arch", "hidden_layers", "width", "seed", "lr", "batch_size",
               "epochs"]) + "\nexemplar,x,none,a,1,24,0,0.05,8\n", r"line 2: expected 10 fields, found 9"),
    (",".join(["family", "task_id", "project_task", "arch", "hidden_layers", "width", "seed", "lr", "batch_size",
               "epochs"]) + "\nexemplar,x,none,a,1,24,0,0.05,0,15\n", r"line 2: expected positive depth"),
])
def test_a_bad_runs_csv_is_a_clear_error(tmp_path, text, match):
    from trainers.config import published_runs

    path = tmp_path / "runs.csv"
    path.write_text(text)
    with pytest.raises(FormatError, match=r"runs\.csv: " + match):
        published_runs(path)
