"""The shipped Boolean tasks (``data/tasks/*.json``, data only) and lookup by id, name or file.

Both commands resolve a task here: ``modgraph analyze --truth "[4,2,4]"`` and
``modgraph-train boolean --task "[4,2,4]"`` (:mod:`trainers.tasks` re-exports these names).

Examples
--------
>>> load_task("[4, 2, 4]").name, load_task("input-separable").id
('input-separable', '[4,2,4]')
>>> len(list_tasks()) >= 38
True
"""
from __future__ import annotations

from pathlib import Path

from modgraph.errors import ModgraphError
from modgraph.tasks.boolean import BooleanTask, read_task

__all__ = ["load_task", "task_file", "list_tasks", "UnknownTaskError", "TASK_DIR"]

#: Folder of the shipped task specs (``data/tasks`` of the repository).
TASK_DIR = Path(__file__).resolve().parents[2] / "data" / "tasks"


class UnknownTaskError(ModgraphError, ValueError):
    """A task name that is neither a spec file nor a shipped task."""


def list_tasks() -> list[BooleanTask]:
    """Every shipped task, sorted by file name."""
    return [read_task(p) for p in sorted(TASK_DIR.glob("*.json"))]


def _key(name: str) -> str:
    return "".join(name.split()).lower()


def task_file(name_or_path) -> Path:
    """The spec file of a shipped task by id (``"[4,2,4]"``, spaces ignored), name or alias, or
    ``name_or_path`` itself when it is a file or ends in ``.json``."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise UnknownTaskError(f"task spec file {str(path)!r} does not exist")
        return path
    key = _key(str(name_or_path))
    files = sorted(TASK_DIR.glob("*.json"))
    tasks = [read_task(p) for p in files]
    for p, task in zip(files, tasks):
        if key in {_key(task.id), _key(task.name), *map(_key, task.spec.get("aliases", []))}:
            return p
    names = ", ".join(f"{t.id} ({t.name})" for t in tasks)
    raise UnknownTaskError(f"unknown task {str(name_or_path)!r}; give a spec file (.json) or one of: {names}")


def load_task(name_or_path) -> BooleanTask:
    """A shipped task by id (``"[4,2,4]"``, spaces ignored), name or alias, or a spec file path."""
    return read_task(task_file(name_or_path))
