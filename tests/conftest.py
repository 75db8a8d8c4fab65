"""Shared fixtures: every test starts with no ASYNCTASQ_* variables and its own cwd."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from asynctasq import context

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ with ``integration``."""
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Remove ASYNCTASQ_* variables and run the test in an empty temporary directory."""
    for name in list(os.environ):
        if name.startswith("ASYNCTASQ_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_current_handle() -> Iterator[None]:
    """Start every test with no current handle, and drop whatever the test made current."""
    token = context.make_current(None)
    yield
    try:
        context.restore(token)
    except ValueError:  # the token belongs to another context: just clear this one
        context.make_current(None)


@pytest.fixture
def anyio_backend() -> str:
    """Run anyio tests on asyncio only (the worker is asyncio-based)."""
    return "asyncio"
