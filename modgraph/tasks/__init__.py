"""Boolean task specs and their ground truth: what modgraph scores a recovered structure against.

The task-spec language (``data/tasks/*.json``, documented in ``docs/trainers.md``) and the
derivation of truth tables and ground truth from a spec are analysis concepts, so they live
here, in numpy only; the trainers import them to train on the truth table and to write the
ground truth into their exports, and ``modgraph analyze --truth SPEC`` derives it without them.

- :mod:`modgraph.tasks.boolean` — ``parse_task``, ``read_task``, ``BooleanTask``.
- :mod:`modgraph.tasks.truth` — ``truth_table``, ``ground_truth`` (format ``modgraph-ground-truth``).

Examples
--------
>>> task = parse_task({"id": "[2,1,1]", "inputs": 2,
...                    "functions": {"f": {"gate": "XOR", "args": ["x1", "x2"]}}, "outputs": ["f"]})
>>> task.truth_table()[1][:, 0].tolist(), task.ground_truth()["input_groups"]
([0.0, 1.0, 1.0, 0.0], [[0, 1]])
"""
from modgraph.tasks.boolean import GATES, BooleanTask, parse_task, read_task
from modgraph.tasks.truth import GROUND_TRUTH_FORMAT, GROUND_TRUTH_VERSION, ground_truth, truth_table

__all__ = ["BooleanTask", "parse_task", "read_task", "GATES", "truth_table", "ground_truth",
           "GROUND_TRUTH_FORMAT", "GROUND_TRUTH_VERSION"]
