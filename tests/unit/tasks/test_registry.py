"""A worker's registry holds exactly the tasks it was given; building it imports nothing."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from asynctasq.errors import ConfigError, TaskNotFoundError
from asynctasq.tasks import AsyncTask, SyncTask, task
from asynctasq.tasks.registry import Registry, build_registry


@task
async def send(to: str) -> None:
    return None


@task(name="reports.build")
def build_report(day: str) -> str:
    return day


class Resize(SyncTask):
    def execute(self) -> None:
        return None


class Base(AsyncTask, abstract=True):
    pass


class FromBase(Base):
    async def execute(self) -> None:
        return None


def not_a_task() -> None:
    return None


class Exploding:
    """A proxy whose ``__class__`` raises, like a web framework's request outside a request."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("working outside of request context")


@pytest.fixture
def modules(monkeypatch: pytest.MonkeyPatch) -> dict[str, types.ModuleType]:
    """Fake loaded modules: a package ``fakeapp`` with a submodule, and a look-alike name."""
    made: dict[str, types.ModuleType] = {}

    def make(name: str, package: bool = False, **values: Any) -> None:
        module = types.ModuleType(name)
        if package:
            module.__path__ = []
        vars(module).update(values)
        made[name] = module
        monkeypatch.setitem(sys.modules, name, module)

    make("fakeapp", package=True, send=send, AsyncTask=AsyncTask, Base=Base, helper=not_a_task)
    make("fakeapp.reports", build_report=build_report, Resize=Resize, count=3)
    make("fakeapp_other", FromBase=FromBase)
    return made


def test_a_module_gives_its_tasks_and_concrete_task_classes(
    modules: dict[str, types.ModuleType],
) -> None:
    registry = build_registry([modules["fakeapp.reports"]])
    assert registry.names == ("reports.build", f"{__name__}:Resize")
    assert registry.lookup("reports.build") is build_report.definition
    assert registry.lookup(f"{__name__}:Resize") is Resize.definition


def test_a_package_also_gives_its_loaded_submodules_but_not_look_alike_names(
    modules: dict[str, types.ModuleType],
) -> None:
    registry = build_registry([modules["fakeapp"]])
    assert set(registry.names) == {send.name, "reports.build", f"{__name__}:Resize"}
    assert f"{__name__}:FromBase" not in registry


def test_abstract_bases_and_the_library_bases_are_skipped(
    modules: dict[str, types.ModuleType],
) -> None:
    registry = build_registry([modules["fakeapp"]])
    assert not any(name.endswith((":Base", ":AsyncTask")) for name in registry.names)


def test_tasks_and_task_classes_can_be_given_directly() -> None:
    registry = build_registry([send, FromBase])
    assert registry.names == tuple(sorted([send.name, f"{__name__}:FromBase"]))
    assert registry.find(send.name) is send.definition


def test_the_same_task_found_twice_is_one_entry(modules: dict[str, types.ModuleType]) -> None:
    registry = build_registry([modules["fakeapp"], modules["fakeapp.reports"], send])
    assert len(registry) == 3


def test_two_different_tasks_under_one_name_are_a_config_error_naming_both() -> None:
    @task(name="dup")
    async def first() -> None:
        return None

    @task(name="dup")
    async def second() -> None:
        return None

    with pytest.raises(ConfigError, match="'dup'") as caught:
        build_registry([first, second])
    assert "first" in str(caught.value)
    assert "second" in str(caught.value)


def test_building_a_registry_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("lazyapp")
    package.__path__ = ["/nowhere"]
    monkeypatch.setitem(sys.modules, "lazyapp", package)
    before = set(sys.modules)
    assert len(build_registry([package])) == 0
    assert set(sys.modules) == before


def test_a_module_holding_a_proxy_that_raises_is_still_scanned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("withproxy")
    vars(module).update(request=Exploding(), send=send)
    assert build_registry([module]).names == (send.name,)


def test_an_unknown_name_is_a_task_not_found_error_naming_it_and_the_known_ones() -> None:
    registry = build_registry([send])
    assert registry.find("no.such:task") is None
    with pytest.raises(TaskNotFoundError, match=r"unknown task 'no\.such:task'") as caught:
        registry.lookup("no.such:task")
    assert send.name in str(caught.value)


@pytest.mark.parametrize(
    ("sources", "says"),
    [
        ("myapp.tasks", "e.g. [myapp.tasks]"),
        (["myapp.tasks"], "never imports"),
        ([not_a_task], "not_a_task"),
        ([Base], "abstract"),
        (sys, "e.g. [myapp.tasks]"),
    ],
)
def test_what_is_not_a_task_source_is_a_type_error_saying_what_to_pass(
    sources: Any, says: str
) -> None:
    with pytest.raises(TypeError, match=r"tasks|abstract") as caught:
        build_registry(sources)
    assert says in str(caught.value)


def test_a_registry_is_read_only() -> None:
    registry = build_registry([send])
    with pytest.raises(TypeError):
        registry.definitions["other"] = send.definition  # type: ignore[index]
    assert Registry().names == ()
