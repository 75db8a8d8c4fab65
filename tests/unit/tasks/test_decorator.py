from __future__ import annotations

import sys

import pytest

from asynctasq.errors import ConfigError
from asynctasq.tasks import PendingDispatch, Task, task
from asynctasq.tasks.registry import build_registry


@task
async def fetch_page(url: str, *, retries: int = 0) -> str:
    return f"{url}:{retries}"


@task(queue="reports", max_attempts=5, retry_strategy="fixed", retry_delay=2, timeout=9)
def build_report(day: str) -> str:
    return f"report {day}"


@task(process=True)
def crunch(n: int) -> int:
    return n * n


@task(process=True)
async def crunch_async(n: int) -> int:
    return n * n


@task(name="custom.name")
async def renamed() -> None:
    return None


def test_a_task_is_named_module_colon_qualname() -> None:
    assert fetch_page.name == f"{__name__}:fetch_page"
    assert fetch_page.definition.name == fetch_page.name


def test_a_custom_name_replaces_module_colon_qualname() -> None:
    assert renamed.name == "custom.name"


def test_a_worker_given_this_module_finds_its_tasks_by_name() -> None:
    registry = build_registry([sys.modules[__name__]])
    assert registry.lookup(fetch_page.name) is fetch_page.definition
    assert registry.lookup("custom.name") is renamed.definition
    assert set(registry.names) == {
        t.name for t in (fetch_page, build_report, crunch, crunch_async, renamed)
    }


def test_the_mode_follows_the_function_kind_and_process_flag() -> None:
    assert fetch_page.definition.mode == "async"
    assert build_report.definition.mode == "sync"
    assert crunch.definition.mode == "sync_process"
    assert crunch_async.definition.mode == "async_process"


def test_decorator_settings_are_kept_as_task_options() -> None:
    options = build_report.definition.options
    assert (options.queue, options.max_attempts, options.retry_strategy) == ("reports", 5, "fixed")
    assert (options.retry_delay, options.timeout, options.visibility_timeout) == (2, 9, None)


def test_calling_a_task_returns_a_pending_dispatch_and_sends_nothing() -> None:
    pending = fetch_page("https://example.com", retries=2)
    assert isinstance(pending, PendingDispatch)
    assert pending.args == ("https://example.com",)
    assert dict(pending.kwargs) == {"retries": 2}
    assert pending.task is fetch_page.definition


def test_arguments_that_do_not_fit_the_signature_fail_at_the_call() -> None:
    with pytest.raises(TypeError, match="fetch_page"):
        fetch_page("a", "b")  # type: ignore[call-arg]


@pytest.mark.anyio
async def test_run_calls_the_function_inline() -> None:
    assert await fetch_page.run("u", retries=1) == "u:1"
    assert build_report.run("monday") == "report monday"
    assert build_report.__wrapped__("tuesday") == "report tuesday"  # type: ignore[attr-defined]


def test_the_task_keeps_the_function_metadata() -> None:
    assert isinstance(fetch_page, Task)
    assert fetch_page.__name__ == "fetch_page"  # type: ignore[attr-defined]
    assert fetch_page.__module__ == __name__


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", 1.5),
        ("retry_strategy", "linear"),
        ("retry_delay", -1),
        ("retry_delay", 10**12),
        ("timeout", 0),
        ("visibility_timeout", -3),
        ("visibility_timeout", 10**12),
        ("queue", ""),
    ],
)
def test_a_bad_decorator_setting_is_a_config_error_naming_it(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option) as caught:
        task(**{option: value})(lambda: None)  # type: ignore[call-overload]
    assert repr(value) in str(caught.value)


def test_generators_and_classes_cannot_be_tasks() -> None:
    def numbers() -> object:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        task(numbers)
    with pytest.raises(TypeError, match="AsyncTask"):
        task(int)
