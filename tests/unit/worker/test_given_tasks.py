"""A worker runs exactly the tasks it is given; its start-up checks warn before trouble."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest

from asynctasq.errors import ConfigError
from asynctasq.handle import Handle
from asynctasq.tasks import build_registry, task
from asynctasq.worker import run_worker
from asynctasq.worker.startup import INTERNAL_CONNECTIONS, connections_needed
from tests.unit.worker.conftest import dead, memory, sizes, work

pytestmark = pytest.mark.anyio


@task
async def greet(name: str) -> str:
    return f"hello {name}"


@task
async def not_given() -> None:
    raise AssertionError("a task the worker was not given must never run")


async def test_a_worker_given_a_module_runs_its_tasks(handle: Handle) -> None:
    await greet("ada").dispatch()
    stats = await run_worker(
        handle, tasks=[sys.modules[__name__]], queues=["q"], max_tasks=1, handle_signals=False
    )
    assert stats.succeeded == 1
    assert (await sizes(handle)).ready == 0


async def test_a_worker_accepts_a_ready_registry(handle: Handle) -> None:
    await greet("bob").dispatch()
    stats = await work(handle, tasks=build_registry([greet]), max_tasks=1)
    assert stats.succeeded == 1


async def test_a_task_defined_and_imported_but_not_given_is_dead_lettered(
    handle: Handle,
) -> None:
    await not_given().dispatch()
    await greet("cy").dispatch()
    stats = await work(handle, tasks=[greet], max_tasks=2, concurrency=1)
    [entry] = await dead(handle)
    assert (entry.task_name, entry.error_type) == (not_given.name, "TaskNotFoundError")
    assert (stats.succeeded, stats.dead_lettered) == (1, 1)


@pytest.mark.parametrize(
    ("tasks", "named"),
    [
        ([], "an empty tasks list"),
        ([logging], "tasks=[logging]"),
        (build_registry([]), "the registry given"),
    ],
)
async def test_a_worker_with_no_task_is_refused_before_connecting(
    handle: Handle, tasks: Any, named: str
) -> None:
    def never() -> Any:
        raise AssertionError("the worker must not connect")

    handle.driver = never  # type: ignore[method-assign]
    with pytest.raises(ConfigError, match="no tasks to run") as caught:
        await run_worker(handle, tasks=tasks, queues=["q"], max_tasks=1)
    assert named in str(caught.value)
    assert "--import myapp.tasks" in str(caught.value)


@pytest.mark.parametrize(
    ("tasks", "error"),
    [
        (__name__, TypeError),  # a module name: the worker never imports
        (greet, TypeError),  # one task, not a list of them
        ([greet, build_registry], TypeError),
    ],
)
async def test_tasks_in_the_wrong_shape_are_refused_before_connecting(
    handle: Handle, tasks: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="tasks"):
        await run_worker(handle, tasks=tasks, queues=["q"], max_tasks=1)


async def test_two_tasks_under_one_name_are_refused_before_connecting(handle: Handle) -> None:
    @task(name=greet.name)
    async def impostor(name: str) -> None:
        return None

    with pytest.raises(ConfigError, match="two tasks share a name"):
        await run_worker(handle, tasks=[greet, impostor], queues=["q"], max_tasks=1)


def test_the_tasks_argument_is_required() -> None:
    with pytest.raises(TypeError, match="tasks"):
        run_worker(None, queues=["q"])  # type: ignore[call-arg, arg-type, unused-coroutine]


def test_a_worker_may_use_a_connection_per_slot_plus_its_own_loops() -> None:
    assert connections_needed(10, leases_on_loop=False) == 10 + INTERNAL_CONNECTIONS
    assert connections_needed(10, leases_on_loop=True) == 11 + INTERNAL_CONNECTIONS


@pytest.mark.parametrize(("pool_size", "warned"), [(2, True), (100, False), (None, False)])
async def test_a_pool_smaller_than_the_worker_needs_is_a_start_up_warning(
    handle: Handle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    pool_size: int | None,
    warned: bool,
) -> None:
    monkeypatch.setattr(await memory(handle), "pool_size", pool_size, raising=False)
    await greet("eve").dispatch()
    with caplog.at_level(logging.WARNING, logger="asynctasq.worker"):
        await work(handle, tasks=[greet], max_tasks=1, concurrency=4)
    assert ("connection pool holds 2 connections" in caplog.text) is warned
    if warned:
        assert "concurrency 4" in caplog.text
