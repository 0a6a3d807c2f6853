"""The import structure of both packages (issue 13): one-way, acyclic, no private reach-ins.

Every ``import`` of every module of ``modgraph`` and ``trainers`` is read with ``ast`` (at any
depth: a lazy import inside a function is an import too) and resolved to project modules:
``from pkg import name`` depends on the module ``pkg.name`` when there is one, else on ``pkg``.
The implicit import of a parent package when a submodule loads is not an edge (every package
whose ``__init__`` imports its submodules would otherwise be a cycle).

A private name is one with a leading underscore (dunders excepted). A module may use a private
*module* of a package it is inside (``modgraph.detect.sbm`` may import ``modgraph.detect._gt``),
never another module's private *names* (``from trainers.sculpt import _advance``, ``sculpt._advance``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("modgraph", "trainers")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def _inside(importer: str, package: str) -> bool:
    return importer == package or importer.startswith(package + ".")


def _base(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    if MODULES[importer].name != "__init__.py":
        parts = parts[:-1]
    parts = parts[:len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


class _Imports(ast.NodeVisitor):
    """Project dependencies, private reach-ins and import-time imports of one module."""

    def __init__(self, name: str):
        self.name, self.depth = name, 0
        self.deps: set[str] = set()
        self.faults: list[str] = []
        self.external: list[tuple[str, int, bool]] = []      # (module, line, at import time)
        self.bound: dict[str, str] = {}                      # local name -> project module

    def _fn(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _fn

    def _module_path(self, module: str, line: int) -> None:
        """A private component of a module path is fine only from inside its package."""
        parts = module.split(".")
        for k, part in enumerate(parts):
            if k and _private(part) and not _inside(self.name, ".".join(parts[:k])):
                self.faults.append(f"{self.name}:{line} imports the private module {module}")

    def visit_Import(self, node):
        for alias in node.names:
            self.external.append((alias.name, node.lineno, self.depth == 0))
            if alias.name in MODULES:
                self.deps.add(alias.name)
                self._module_path(alias.name, node.lineno)
                if alias.asname:
                    self.bound[alias.asname] = alias.name
                else:
                    self.bound[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node):
        base = _base(self.name, node)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self.external.append((full if full in MODULES else base, node.lineno, self.depth == 0))
            if full in MODULES:
                self.deps.add(full)
                self._module_path(full, node.lineno)
                self.bound[alias.asname or alias.name] = full
            elif base in MODULES:
                self.deps.add(base)
                self._module_path(base, node.lineno)
                if _private(alias.name):
                    self.faults.append(f"{self.name}:{node.lineno} imports {base}.{alias.name}, a private name of "
                                       f"another module")

    def visit_Attribute(self, node):
        chain, root = [node.attr], node.value
        while isinstance(root, ast.Attribute):
            chain.append(root.attr)
            root = root.value
        if _private(node.attr) and isinstance(root, ast.Name) and root.id in self.bound:
            dotted = ".".join([self.bound[root.id], *reversed(chain)])
            owner = dotted.rsplit(".", 1)[0]
            if dotted in MODULES:
                self._module_path(dotted, node.lineno)
            elif owner in MODULES:
                self.faults.append(f"{self.name}:{node.lineno} uses {dotted}, a private name of another module")
        self.generic_visit(node)


def _scan() -> dict[str, _Imports]:
    out = {}
    for name, path in MODULES.items():
        visitor = _Imports(name)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        out[name] = visitor
    return out


SCAN = _scan()


def _cycles(edges: dict[str, set]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), by Tarjan."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_scan_sees_the_packages_and_their_lazy_imports():
    """Guards the walk itself: it finds the modules, lazy imports and the registry edges."""
    assert {"modgraph", "modgraph.cli", "modgraph.tasks.boolean", "trainers.cli", "trainers.sculpt"} <= set(MODULES)
    assert "modgraph.score" in SCAN["modgraph.cli"].deps                        # a lazy import in a function
    assert "modgraph.tasks" in SCAN["modgraph.score"].deps                      # (read_truth derives a spec's truth)
    assert "modgraph.detect.subfunctions" in SCAN["modgraph.detect"].deps
    assert "modgraph.tasks.shipped" in SCAN["trainers.tasks"].deps


def test_no_import_cycle():
    edges = {name: scan.deps for name, scan in SCAN.items()}
    assert _cycles(edges) == []


def test_cycle_finder_finds_a_planted_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(edges) == [["a", "b", "c"], ["e"]]


def test_modgraph_never_imports_trainers_and_never_torch_at_import_time():
    """Anywhere in modgraph no ``trainers``; ``torch`` only lazily, inside the state-dict reader."""
    bad = []
    for name, scan in SCAN.items():
        if not name.startswith("modgraph"):
            continue
        for module, line, at_import in scan.external:
            top = module.split(".")[0]
            if top == "trainers" or (top == "torch" and at_import):
                bad.append(f"{name}:{line} imports {module}")
    assert bad == []
    lazy_torch = sorted({n for n, s in SCAN.items() if n.startswith("modgraph")
                         for m, _, at in s.external if m.split(".")[0] == "torch"})
    assert lazy_torch == ["modgraph.io.torch_state"]


def test_no_module_uses_another_modules_private_names():
    assert [f for scan in SCAN.values() for f in scan.faults] == []


@pytest.mark.parametrize("source, fault", [
    ("from trainers.sculpt import _advance", "imports trainers.sculpt._advance, a private name"),
    ("from trainers import sculpt\nsculpt._advance(1)", "uses trainers.sculpt._advance, a private name"),
    ("import trainers.sculpt as s\ns._choose()", "uses trainers.sculpt._choose, a private name"),
    ("import trainers.sculpt\ntrainers.sculpt._choose()", "uses trainers.sculpt._choose, a private name"),
    ("from modgraph.detect import _gt", "imports the private module modgraph.detect._gt"),
    ("from modgraph.io._chain import Chain", "imports the private module modgraph.io._chain"),
])
def test_private_reach_ins_are_caught(source, fault):
    visitor = _Imports("trainers.cli")
    visitor.visit(ast.parse(source))
    assert len(visitor.faults) == 1 and fault in visitor.faults[0]


def test_private_modules_are_open_to_their_own_package():
    visitor = _Imports("modgraph.detect.sbm")
    visitor.visit(ast.parse("from modgraph.detect import _gt\n_gt.fit_blockmodel(1)\n"
                            "from modgraph.detect._common import prepare"))
    assert visitor.faults == [] and {"modgraph.detect._gt", "modgraph.detect._common"} <= visitor.deps
