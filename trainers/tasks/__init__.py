"""The shipped Boolean tasks (``data/tasks/*.json``) and lookup by id, name or file.

The lookup lives on the graph side, :mod:`modgraph.tasks.shipped` (so ``modgraph analyze
--truth "[4,2,4]"`` resolves ids without the trainers); these are its names, re-exported. The
spec language and the ground truth derived from a spec are in :mod:`modgraph.tasks`; a task
returned here is a :class:`modgraph.tasks.BooleanTask`.

Examples
--------
>>> load_task("[4, 2, 4]").name, load_task("input-separable").id
('input-separable', '[4,2,4]')
"""
from __future__ import annotations

from modgraph.tasks.shipped import TASK_DIR, UnknownTaskError, list_tasks, load_task

__all__ = ["load_task", "list_tasks", "UnknownTaskError", "TASK_DIR"]
