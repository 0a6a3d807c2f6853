"""The main job on the embedded default, behind ``make demo`` (``modgraph-train demo``).

Train and sculpt the Neural Sculpting task ``[6,3,3,3]`` ("both": three input-separable AND
modules, each reused by two of the three OR outputs) on ``[6,24,24,3]`` over the full
(Pu, Pe) grid, export ``network.h5`` and ``network.onnx``, analyse both files with the
default detector, and print the recovered hierarchy beside the ground truth with the scores.
"""
from __future__ import annotations

import time
from pathlib import Path

__all__ = ["run_demo"]


def run_demo(out, *, task_name: str = "both", hidden=(24, 24), seed: int = 0, method: str = "sculpting") -> int:
    """Run the demo, writing under ``out``; returns 0 when both analyses succeed."""
    from modgraph.analyze import analyze_file, write_analysis
    from modgraph.report.text import format_analysis, format_truth_vs_found
    from trainers.config import dense_epoch_limit, task_train_config
    from trainers.export import export_run
    from trainers.sculpt import SculptConfig, sculpt_grid
    from trainers.tasks import load_task

    out = Path(out)
    t0 = time.perf_counter()
    task = load_task(task_name)
    widths = [task.n_inputs, *hidden, task.n_outputs]
    print(f"modgraph demo — task {task.id} ({task.name}): {task.spec.get('description', '')}")
    print(f"1. train and sculpt {widths}, seed {seed}, full (Pu, Pe) grid (Neural Sculpting §4)")
    cfg = SculptConfig(train=task_train_config(task, hidden, seed=seed),
                       max_dense_epochs=dense_epoch_limit(task, hidden, seed=seed))
    x, y = task.truth_table()
    result = sculpt_grid(x, y, widths, config=cfg, seed=seed, progress=True)
    record = {"command": "demo", "task": task.id, "task_name": task.name, "hidden": list(hidden),
              "widths": widths, "seed": seed, "grid": True, "sculpt": cfg.to_dict()}
    paths = export_run(result, task, out / "run", config=record)
    print(f"   accuracy {100 * result.accuracy:.1f} %, {result.edges} edges left "
          f"(sparsity {result.sparsity:.2f} %), chosen Pu={result.pu} Pe={result.pe}")
    print(f"   exported {paths['hdf5']} and {paths['onnx']}")
    ok = True
    for kind in ("hdf5", "onnx"):
        # both files carry the ground truth in their metadata (HDF5 attributes, ONNX metadata_props)
        a = analyze_file(paths[kind], method=method, seed=seed)
        folder = out / f"analysis-{kind}"
        write_analysis(a, folder)
        d = a.to_dict()
        print(f"\n2. analyse {paths[kind].name} ({d['source_format']}) with {method}")
        print(format_analysis(d))
        print()
        print(format_truth_vs_found(d))
        print(f"   pictures: {folder / 'network.png'} (units coloured by module), "
              f"{folder / 'modules.png'} (module DAG); JSON: {folder / 'analysis.json'}")
        ok &= bool(a.scores and a.scores["success"])
    print(f"\ndone in {time.perf_counter() - t0:.0f} s: " + ("both files give the ground-truth hierarchy"
                                                         if ok else "the recovered structure misses the ground truth"))
    return 0 if ok else 1
