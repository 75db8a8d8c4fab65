"""Tasks and the worker keep no module-level state: no registries, caches or ContextVars.

DESIGN: "No global singletons; the one exception is a single ContextVar holding the
current handle" (``asynctasq/context.py``). Module-level constants must be immutable
(tuples, frozensets, ``MappingProxyType``); loggers and ``__all__`` are fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import asynctasq

PACKAGE_ROOT = Path(asynctasq.__file__).parent
CHECKED = ("tasks", "worker")

MUTABLE_CALLS = frozenset(
    {
        "dict",
        "list",
        "set",
        "deque",
        "defaultdict",
        "OrderedDict",
        "Counter",
        "ContextVar",
        "WeakKeyDictionary",
        "WeakValueDictionary",
        "WeakSet",
        "local",
    }
)
CACHES = frozenset({"cache", "lru_cache", "cached_property"})
MUTABLE_DISPLAYS = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)


def called_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def problems_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__":
            continue  # the export list, read by tools
        if isinstance(value, MUTABLE_DISPLAYS) or (
            isinstance(value, ast.Call) and called_name(value) in MUTABLE_CALLS
        ):
            found.append(f"line {node.lineno}: module-level mutable value")
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.extend(
                f"line {node.lineno}: module-level cache @{called_name(d)}"
                for d in node.decorator_list
                if called_name(d) in CACHES
            )
    found.extend(
        f"line {node.lineno}: global statement"
        for node in ast.walk(tree)
        if isinstance(node, ast.Global)
    )
    return found


@pytest.mark.parametrize(
    "path",
    sorted(path for package in CHECKED for path in (PACKAGE_ROOT / package).rglob("*.py")),
    ids=lambda path: str(path.relative_to(PACKAGE_ROOT)),
)
def test_a_module_keeps_no_mutable_state(path: Path) -> None:
    assert problems_in(path) == []


def test_the_check_catches_a_registry_dict_a_context_var_and_a_cache(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text(
        "import functools\n"
        "from contextvars import ContextVar\n"
        "_TASKS: dict[str, int] = {}\n"
        "RUNNING = ContextVar('r')\n"
        "@functools.cache\n"
        "def f() -> int:\n"
        "    global _TASKS\n"
        "    return 1\n"
    )
    assert problems_in(source) == [
        "line 3: module-level mutable value",
        "line 4: module-level mutable value",
        "line 6: module-level cache @cache",
        "line 7: global statement",
    ]
