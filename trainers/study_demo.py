"""The study demo (issue 17), behind ``make study-demo`` (``modgraph-train study-demo``).

One sculpted network (the demo task ``[6,3,3,3]`` "both" on ``[6,24,24,3]``, trained and sculpted
by ``trainers.study.sculpt_cells`` with one (Pu, Pe) step: seconds, cached in ``OUT/network``)
is exported through every exporter we have here: PyTorch ONNX (the legacy TorchScript exporter,
``dynamo=False``, and the dynamo exporter), a PyTorch state dict, the same state dict as
safetensors (``safetensors.numpy``: the torch key names, contiguous float32 arrays), Keras 3
(``.keras``, torch backend) and modgraph HDF5. A ``modgraph study`` over the exports (3 methods × 3 seeds by
default, each file tagged with its framework and all with ``network = "demo"``) writes
``OUT/study/report.html``; the demo succeeds when its "agreement across frameworks" section
finds every pair of exports giving the same graph and the same partition.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = ["export_all", "run_study_demo", "METHODS", "EXPORTERS"]

METHODS = ("sculpting", "modularity", "sbm")
#: framework tag -> file name, in the order the report lists them
EXPORTERS = {"modgraph-hdf5": "network.h5", "torch-onnx-legacy": "torch-legacy.onnx",
             "torch-onnx-dynamo": "torch-dynamo.onnx", "torch-state-dict": "state_dict.pt",
             "keras3": "model.keras",
             "safetensors": "model.safetensors"}


def _torch_model(net) -> torch.nn.Sequential:
    """A plain ``nn.Sequential`` with the network's weights; pruned edges are zeros."""
    mods = []
    for layer in net.layers:
        lin = torch.nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(layer.dense(), dtype=np.float32)))
            lin.bias.copy_(torch.from_numpy(np.array(layer.bias, dtype=np.float32)))
        mods += [lin, torch.nn.Sigmoid() if layer.activation == "sigmoid" else torch.nn.ReLU()]
    return torch.nn.Sequential(*mods).eval()


def _keras(net, path: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")          # before keras is imported: no TensorFlow here
    import keras

    model = keras.Sequential([keras.Input((net.n_inputs,))] + [
        keras.layers.Dense(layer.n_out, activation="sigmoid" if layer.activation == "sigmoid" else "relu")
        for layer in net.layers])
    model.set_weights([a for layer in net.layers
                       for a in (np.asarray(layer.dense(), np.float32).T, np.asarray(layer.bias, np.float32))])
    model.save(path)


def export_all(net, out, *, frameworks=tuple(EXPORTERS)) -> dict[str, Path]:
    """Write ``net`` (a LayeredNetwork) through each exporter in ``frameworks``; {framework: path}."""
    from modgraph.io import save

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {fw: out / EXPORTERS[fw] for fw in frameworks}
    model = _torch_model(net)
    x = torch.zeros(1, net.n_inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fw, path in paths.items():
            if fw == "modgraph-hdf5":
                save(net, path)
            elif fw == "torch-onnx-legacy":
                torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"],
                                  dynamic_axes={"x": {0: "batch"}})
            elif fw == "torch-onnx-dynamo":
                torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False, verbose=False)
            elif fw == "torch-state-dict":
                torch.save(model.state_dict(), path)
            elif fw == "keras3":
                _keras(net, path)
            elif fw == "safetensors":
                from safetensors.numpy import save_file
                save_file({k: np.ascontiguousarray(v.detach().numpy()) for k, v in model.state_dict().items()},
                          str(path))
    return paths


def run_study_demo(out, *, methods=METHODS, seeds: int = 3, frameworks=tuple(EXPORTERS), workers: int = 2,
                   hidden=(24, 24), seed: int = 0, progress: bool = True) -> int:
    """Sculpt (or reuse), export, run the study, print the agreement; 0 when every pair agrees."""
    from modgraph.io import load
    from modgraph.study import parse_spec, run_study
    from modgraph.study.summary import agreement
    from trainers.study import sculpt_cells
    from trainers.tasks import load_task

    out = Path(out).resolve()          # absolute: the spec's paths are resolved against its base, ``out``
    t0 = time.perf_counter()
    task = load_task("both")
    print(f"modgraph study demo — task {task.id} ({task.name}) on [{task.n_inputs},{','.join(map(str, hidden))},"
          f"{task.n_outputs}], seed {seed}")
    (path, info), = sculpt_cells([("both", tuple(hidden), seed)], out / "network", grid=False, progress=progress)
    print(f"1. sculpted (one (Pu, Pe) step): accuracy {100 * info['accuracy']:.1f} %, {info['edges']} edges: {path}")
    net = load(path)
    paths = export_all(net, out / "exports", frameworks=frameworks)
    print("2. exported through " + ", ".join(f"{fw} ({p.name})" for fw, p in paths.items()))
    truth = out / "truth.json"
    truth.write_text(json.dumps(task.spec))
    spec = parse_spec({"study": {"name": f"study demo: one network, {len(paths)} exports", "seeds": seeds,
                                 "truth": str(truth)},
                       "inputs": [{"path": str(p), "framework": fw, "network": "demo"} for fw, p in paths.items()],
                       "methods": list(methods)}, source="<study demo>", base=out)
    outcome = run_study(spec, out / "study", workers=workers, progress=progress)
    pairs = agreement(outcome.records)
    differ = [p for p in pairs if not p["same_partition"]]
    print(f"3. {outcome.line()}")
    print(f"   agreement across frameworks: {len(pairs)} pairs (method x seed x pair of exports), "
          f"{len(differ)} differing")
    for p in differ:
        print(f"   differs: {p['label']} seed {p['seed']}: {p['a_framework']} vs {p['b_framework']} "
              f"(same graph: {p['same_graph']}, ARI {p['ari']})")
    print(f"   report: {out / 'study' / 'report.html'}; done in {time.perf_counter() - t0:.0f} s")
    return 0 if pairs and not differ and not outcome.errors else 1
