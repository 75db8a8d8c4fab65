"""Dispatch to the real Redis, run by ``python -m asynctasq worker`` subprocesses."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import anyio
import pytest

from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many
from tests.integration.worker import tasks_mod
from tests.integration.worker.conftest import Ledger, Worker, queue_keys

pytestmark = pytest.mark.anyio


async def test_tasks_dispatched_to_redis_are_run_by_a_worker_process(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    ids = await dispatch_many(
        [tasks_mod.record(ledger.key, f"n{n}").on_queue(queue) for n in range(5)]
    )
    sync_id = await tasks_mod.slow_sync(ledger.key, 0.01).on_queue(queue).dispatch()
    worker = start_worker("--queues", queue, "--concurrency", "4")
    rows = await ledger.wait_for(lambda rows: len(rows) == 7, 15)
    assert sorted(r["task_id"] for r in rows if r["event"] == "run") == sorted(ids)
    assert {r["task_id"] for r in rows if r["event"] != "run"} == {sync_id}
    assert {r["pid"] for r in rows} == {worker.pid}
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert await queue_keys(redis_url, queue) == {
        "ready": 0,
        "in_flight": 0,
        "delayed": 0,
        "dead": 0,
    }
    log = worker.output()
    assert "succeeded" in log
    assert "Traceback" not in log


async def test_max_tasks_makes_the_worker_exit_by_itself(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    await dispatch_many([tasks_mod.record(ledger.key, "x").on_queue(queue) for _ in range(3)])
    worker = start_worker("--queues", queue, "--max-tasks", "2")
    assert worker.wait(15) == 0
    assert len(ledger.rows("run")) == 2
    assert (await queue_keys(redis_url, queue))["ready"] == 1


async def test_a_task_over_its_timeout_is_retried_then_dead_lettered(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    pending = tasks_mod.slow(ledger.key, 30).on_queue(queue).timeout(0.5)
    task_id = await pending.max_attempts(2).retry_after(0).dispatch()
    worker = start_worker("--queues", queue)
    await ledger.wait_for(lambda rows: len(rows) == 2, 15)
    driver = await handle.driver()
    for _ in range(100):
        if (await queue_keys(redis_url, queue))["dead"] == 1:
            break
        await asyncio.sleep(0.05)
    [entry] = await driver.dead_letters(queue)  # type: ignore[attr-defined]
    assert (entry.task_id, entry.error_type, entry.attempts) == (task_id, "TaskTimeoutError", 2)
    assert [r["attempt"] for r in ledger.rows("start")] == [1, 2]
    assert ledger.rows("end") == []
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0


async def test_an_unknown_task_is_dead_lettered_and_the_worker_stays_up(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    from asynctasq.drivers.protocol import Outgoing
    from asynctasq.message import TaskMessage, encode

    ghost = TaskMessage(
        "ghost-id", "x.y:ghost", (), {}, queue, 1, 3, "fixed", 0.0, None, 60.0, None, time.time()
    )
    driver = await handle.driver()
    await driver.enqueue(Outgoing(queue, encode(ghost)))
    await driver.enqueue(Outgoing(queue, b"\x00not a message"))
    await tasks_mod.record(ledger.key, "after").on_queue(queue).dispatch()
    worker = start_worker("--queues", queue)
    await ledger.wait_for(lambda rows: len(rows) == 1, 15)
    with anyio.fail_after(15):  # the three run concurrently: "after" may finish first
        while len(entries := await driver.dead_letters(queue)) < 2:  # type: ignore[attr-defined]  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert sorted(e.error_type for e in entries) == ["SerializationError", "TaskNotFoundError"]
    assert any("unknown task 'x.y:ghost'" in e.error_message for e in entries)
    assert worker.process.poll() is None
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    assert "unknown task 'x.y:ghost'" in worker.output()
