import json

from trainers.demo import run_demo


def test_demo_recovers_the_ground_truth_from_both_files(tmp_path, capsys):
    assert run_demo(tmp_path) == 0
    out = capsys.readouterr().out
    assert "both files give the ground-truth hierarchy" in out
    for kind in ("hdf5", "onnx"):
        d = json.loads((tmp_path / f"analysis-{kind}" / "analysis.json").read_text())
        assert d["scores"]["success"] is True and d["condensed"]["widths"] == [6, 3, 3, 3]
        assert sorted(m["reuse"] for m in d["dag"]["modules"]) == [0, 0, 0, 2, 2, 2]
        assert (tmp_path / f"analysis-{kind}" / "modules.png").stat().st_size > 1000
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"network.h5", "network.onnx", "config.json"}
