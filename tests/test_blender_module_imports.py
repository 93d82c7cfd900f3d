"""The add-on's modules import one way (plans, then placement, then operators, then the
panel) and never reach into each other's private names. Read from the sources with ast,
every import counted, those inside functions too: a lazy import is still a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ADDON = Path(__file__).resolve().parent.parent / "hosts" / "blender" / "acestep_blender"
MODULES = sorted(p.stem for p in ADDON.glob("*.py") if p.stem != "__init__")


def _tree(module: str) -> ast.Module:
    path = ADDON / f"{module}.py"
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _sibling_imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """(sibling module, names taken from it, line) for every `from . import x` and
    `from .x import y` anywhere in the module."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level != 1:
            continue
        if node.module is None:  # from . import a, b
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name in MODULES]
        elif node.module in MODULES:
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    return {m: {target for target, _, _ in _sibling_imports(_tree(m))} - {m} for m in MODULES}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for module in MODULES:
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({**{m: set() for m in MODULES}, "operators": {"panel"}, "panel": {"compat", "operators"}}) \
        == ["operators", "panel", "operators"]


def test_the_addon_modules_import_each_other_in_one_direction():
    cycle = _cycle(_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_operators_sit_above_placement_and_plans_below_it():
    graph = _graph()
    for low, high in (("cue_plans", "strip_placement"), ("strip_placement", "job_tracking"),
                      ("job_tracking", "operators"), ("operators", "panel"), ("intensity_sets", "operators")):
        assert high not in _reachable(graph, low), f"{low} imports {high}, which is above it"


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, pending = set(), [start]
    while pending:
        for target in graph[pending.pop()] - seen:
            seen.add(target)
            pending.append(target)
    return seen


@pytest.mark.parametrize("module", MODULES + ["__init__"])
def test_no_module_reaches_into_another_modules_private_names(module):
    tree = _tree(module)
    imported_modules = set()
    problems = []
    for target, names, line in _sibling_imports(tree):
        if not names:
            imported_modules.add(target)
        problems += [f"line {line}: from .{target} import {n}" for n in names if _private(n)]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in imported_modules and _private(node.attr)):
            problems.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert not problems, f"{module}.py uses private names of other modules: {'; '.join(problems)}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
