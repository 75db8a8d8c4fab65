"""Deliveries that cannot run are dead-lettered with a reason; the worker goes on (C02, C24)."""

from __future__ import annotations

import asyncio
import logging
import time

import msgpack
import pytest

from asynctasq.drivers.protocol import Outgoing
from asynctasq.handle import Handle
from asynctasq.message import TaskMessage, encode
from asynctasq.tasks import AsyncTask, TaskConfig, current_task, task
from tests.unit.worker.conftest import dead, memory, sizes, work

pytestmark = pytest.mark.anyio


@task
async def bystander() -> None:
    """A task the worker runs, so that it starts; the messages here never reach it."""


def message(task_name: str, *, max_attempts: int = 3, vt: float = 60.0) -> TaskMessage:
    return TaskMessage(
        task_id="t-" + task_name.replace(":", "-"),
        task_name=task_name,
        args=(),
        kwargs={},
        queue="q",
        attempt=1,
        max_attempts=max_attempts,
        retry_strategy="fixed",
        retry_delay_seconds=0.0,
        timeout_seconds=None,
        visibility_timeout_seconds=vt,
        correlation_id=None,
        dispatched_at=time.time(),
    )


async def test_an_unknown_task_name_is_dead_lettered_loudly_and_the_worker_goes_on(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []

    @task
    async def known() -> None:
        ran.append(1)

    driver = await memory(handle)
    await driver.enqueue(Outgoing("q", encode(message("x.y:missing"))))
    await known().dispatch()
    stats = await work(handle, tasks=[known], max_tasks=2, concurrency=1)
    [entry] = await dead(handle)
    assert entry.error_type == "TaskNotFoundError"
    assert "unknown task 'x.y:missing'" in entry.error_message
    assert entry.task_name == "x.y:missing"
    assert ran == [1]
    assert (stats.succeeded, stats.dead_lettered) == (1, 1)
    assert "unknown task 'x.y:missing'" in caplog.text


async def test_a_message_never_makes_the_worker_import_anything(handle: Handle) -> None:
    import sys

    driver = await memory(handle)
    await driver.enqueue(Outgoing("q", encode(message("this_module_does_not_exist_xyz:run"))))
    await work(handle, tasks=[bystander], max_tasks=1)
    assert "this_module_does_not_exist_xyz" not in sys.modules
    assert [e.error_type for e in await dead(handle)] == ["TaskNotFoundError"]


@pytest.mark.parametrize("body", [b"garbage", b"", b"\x93\x01\x02\x03", b"\xc1"])
async def test_an_undecodable_payload_is_dead_lettered_with_the_reason(
    handle: Handle, body: bytes
) -> None:
    driver = await memory(handle)
    await driver.enqueue(Outgoing("q", body))
    stats = await work(handle, tasks=[bystander], max_tasks=1)
    [entry] = await dead(handle)
    assert entry.error_type == "SerializationError"
    assert entry.error_message.startswith("undecodable payload")
    assert entry.body == body
    assert stats.dead_lettered == 1


async def test_an_undecodable_payload_is_logged_once_naming_the_task_when_readable(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    newer = msgpack.packb([2, "t-from-the-future", "app.tasks:send", [], {}])
    driver = await memory(handle)
    await driver.enqueue(Outgoing("q", newer))
    with caplog.at_level(logging.INFO, logger="asynctasq"):
        await work(handle, tasks=[bystander], max_tasks=1)
    [entry] = await dead(handle)
    assert (entry.task_id, entry.task_name) == ("t-from-the-future", "app.tasks:send")
    assert "format version 2 is not supported" in entry.error_message
    [line] = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("task t-from-the-future app.tasks:send queue=q ")
    assert "dead-lettered: undecodable payload: cannot decode" in line.getMessage()


async def test_garbage_is_logged_once_without_a_task_id(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    driver = await memory(handle)
    await driver.enqueue(Outgoing("q", b"garbage-not-msgpack"))
    with caplog.at_level(logging.INFO, logger="asynctasq"):
        await work(handle, tasks=[bystander], max_tasks=1)
    [line] = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert line.getMessage().startswith("task - - queue=q dead-lettered: undecodable payload")
    assert [e.task_id for e in await dead(handle)] == [""]


async def lose_lease_once(handle: Handle) -> None:
    """Play a worker that dies holding the message: claim it, let the lease expire."""
    driver = await memory(handle)
    [claimed] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    assert claimed.delivery_count == 1
    await asyncio.sleep(claimed.visibility_timeout_seconds + 0.01)
    await driver.maintain(["q"])


@pytest.mark.usefixtures("short_leases")
async def test_a_crashed_attempt_counts_and_the_task_runs_again_as_the_next_attempt(
    handle: Handle,
) -> None:
    attempts: list[int] = []

    @task(max_attempts=3)
    async def resumable() -> None:
        info = current_task()
        assert info is not None
        attempts.append(info.attempt)

    await resumable().visibility_timeout(0.05).dispatch()
    await lose_lease_once(handle)
    await work(handle, tasks=[resumable], max_tasks=1)
    assert attempts == [2]
    assert (await sizes(handle)).ready == 0


@pytest.mark.usefixtures("short_leases")
async def test_a_crash_in_the_last_attempt_dead_letters_with_worker_lost(
    handle: Handle,
) -> None:
    failed: list[str] = []
    ran: list[int] = []

    class Fragile(AsyncTask):
        config: TaskConfig = {"max_attempts": 1, "visibility_timeout": 0.05}

        async def execute(self) -> None:
            ran.append(1)

        async def failed(self, exc: BaseException) -> None:
            failed.append(type(exc).__name__)

    await Fragile().dispatch()
    await lose_lease_once(handle)
    stats = await work(handle, tasks=[Fragile], max_tasks=1)
    assert ran == []
    assert failed == ["WorkerLostError"]
    [entry] = await dead(handle)
    assert entry.error_type == "WorkerLostError"
    assert "worker lost" in entry.error_message
    assert "visibility timeout expired" in entry.error_message
    assert entry.attempts == 1
    assert stats.dead_lettered == 1


async def test_arguments_that_do_not_fit_the_task_fail_like_an_error_in_it(
    handle: Handle,
) -> None:
    @task(max_attempts=1)
    async def needs_one(x: int) -> None:
        return None

    raw = message(needs_one.name, max_attempts=1)
    await (await memory(handle)).enqueue(Outgoing("q", encode(raw)))
    await work(handle, tasks=[needs_one], max_tasks=1)
    assert [e.error_type for e in await dead(handle)] == ["TypeError"]


async def test_a_process_pool_task_defined_in_a_function_is_dead_lettered_with_the_fix(
    handle: Handle,
) -> None:
    @task(process=True, max_attempts=3)
    def cpu_bound() -> None:
        return None

    await cpu_bound().dispatch()
    stats = await work(handle, tasks=[cpu_bound], max_tasks=1)
    [entry] = await dead(handle)
    assert entry.error_type == "ProcessPoolUnavailableError"
    assert "defined inside a function" in entry.error_message
    assert "define it at the top level of module" in entry.error_message
    assert stats.retried == 0
