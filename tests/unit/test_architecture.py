"""The package's layers: a module imports only from its own layer or below (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import asynctasq

PACKAGE_ROOT = Path(asynctasq.__file__).parent

# Longest prefix wins. Layer numbers from DESIGN.md "Layout".
LAYERS: dict[str, int] = {
    "asynctasq.errors": 0,
    "asynctasq.context": 0,
    "asynctasq.config": 1,
    "asynctasq.codec": 2,
    "asynctasq.message": 2,
    "asynctasq.retry": 2,
    "asynctasq.events.records": 2,
    "asynctasq.drivers": 3,
    "asynctasq.orm": 3,  # ORM libraries (sqlalchemy, tortoise) are imported only here
    "asynctasq.events": 4,
    "asynctasq.handle": 4,
    "asynctasq.tasks": 5,
    "asynctasq.worker": 5,
    "asynctasq.monitoring": 5,
    "asynctasq.runner": 5,
    "asynctasq.cli": 6,
    "asynctasq.integrations": 6,
    "asynctasq.demo": 6,
    "asynctasq.__main__": 6,
    "asynctasq": 6,
}

BROKER_CLIENTS = (
    "redis",
    "asyncpg",
    "aiomysql",
    "pymysql",
    "aio_pika",
    "aiormq",
    "aioboto3",
    "botocore",
)

# tasks/ and worker/ see drivers only through the protocol and build_driver (DESIGN.md).
DRIVER_SEAMS = ("asynctasq.drivers", "asynctasq.drivers.protocol")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(name: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, layer)
    return None if best is None else best[1]


def imports_of(path: Path, package: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append(target)
            found.extend(f"{target}.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(PACKAGE_ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_module_has_a_layer(path: Path) -> None:
    assert layer_of(module_name(path)) is not None, f"give {module_name(path)} a layer in LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_module_imports_nothing_from_a_higher_layer(path: Path) -> None:
    name = module_name(path)
    own = layer_of(name)
    assert own is not None
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    upward = []
    for target in imports_of(path, package):
        if not target.startswith("asynctasq"):
            continue
        layer = layer_of(target)
        if layer is not None and layer > own and target != "asynctasq":
            upward.append(f"{target} (layer {layer})")
    assert not upward, f"{name} (layer {own}) imports upward: {upward}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_broker_clients_are_imported_only_by_drivers(path: Path) -> None:
    name = module_name(path)
    if name.startswith("asynctasq.drivers"):
        return
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    clients = [
        target for target in imports_of(path, package) if target.split(".")[0] in BROKER_CLIENTS
    ]
    assert not clients, f"{name} imports broker clients {clients}; only asynctasq.drivers may"


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if module_name(p).startswith(("asynctasq.tasks", "asynctasq.worker"))],
    ids=lambda p: module_name(p),
)
def test_tasks_and_worker_see_drivers_only_through_the_protocol(path: Path) -> None:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    reached = [
        target
        for target in imports_of(path, package)
        if target.startswith("asynctasq.drivers")
        and not any(target == seam or target.startswith(seam + ".") for seam in DRIVER_SEAMS[1:])
        and target not in ("asynctasq.drivers", "asynctasq.drivers.build_driver")
    ]
    assert not reached, f"{name} reaches into driver modules: {reached}"


def test_the_layer_walk_sees_the_whole_package() -> None:
    names = {module_name(p) for p in MODULES}
    assert {"asynctasq.errors", "asynctasq.context", "asynctasq.config.records"} <= names
