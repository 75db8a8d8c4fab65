"""Task names: ``module:qualname``; a script run as ``__main__`` gets its importable name (C24)."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path

import pytest

from asynctasq.errors import ConfigError
from asynctasq.handle import Handle
from asynctasq.tasks import task
from asynctasq.tasks.naming import main_module_name, task_name

pytestmark = pytest.mark.anyio


def fake_main(
    monkeypatch: pytest.MonkeyPatch, *, spec_name: str | None = None, file: str | None = None
) -> None:
    module = types.ModuleType("__main__")
    module.__spec__ = (
        None if spec_name is None else importlib.machinery.ModuleSpec(spec_name, loader=None)
    )
    if file is not None:
        module.__file__ = file
    monkeypatch.setitem(sys.modules, "__main__", module)


def test_a_task_in_an_importable_module_is_named_module_colon_qualname() -> None:
    assert task_name("myapp.tasks", "Outer.send") == ("myapp.tasks:Outer.send", "")


def test_a_script_run_with_dash_m_is_named_after_its_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_main(monkeypatch, spec_name="pkg.main", file="/somewhere/pkg/main.py")
    assert main_module_name() == "pkg.main"
    assert task_name("__main__", "hello") == ("pkg.main:hello", "")


def test_a_script_run_by_path_is_named_relative_to_its_sys_path_entry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = tmp_path / "app" / "producer.py"
    script.parent.mkdir()
    script.write_text("")
    monkeypatch.setattr(sys, "path", [str(script.parent), *sys.path])
    fake_main(monkeypatch, file=str(script))
    assert task_name("__main__", "hello") == ("producer:hello", "")


@pytest.mark.parametrize("file", [None, "/nowhere/on/the/path/my-script.py"])
def test_a_main_without_an_importable_name_is_refused_at_dispatch(
    monkeypatch: pytest.MonkeyPatch, file: str | None
) -> None:
    fake_main(monkeypatch, file=file)
    name, error = task_name("__main__", "hello")
    assert name == "__main__:hello"
    assert "--import" in error
    assert "python -m" in error


async def test_dispatching_a_task_from_an_unimportable_main_raises_the_explanation(
    monkeypatch: pytest.MonkeyPatch, handle: Handle
) -> None:
    fake_main(monkeypatch)

    async def hello() -> None:
        return None

    hello.__module__ = "__main__"
    made = task(hello)
    with pytest.raises(ConfigError, match="importable module"):
        await made().dispatch()
