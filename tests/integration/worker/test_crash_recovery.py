"""A killed worker's task comes back within visibility timeout + one interval (C01, C02)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import pytest

from asynctasq.handle import Handle
from tests.integration.worker import tasks_mod
from tests.integration.worker.conftest import MAINTENANCE_SECONDS, Ledger, Worker, queue_keys
from tests.integration.worker.targets import Sizes, on_brokers

pytestmark = pytest.mark.anyio

VISIBILITY = 3.0


@on_brokers
async def test_a_task_of_a_sigkilled_worker_is_completed_by_another_with_the_attempt_counted(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    pending = tasks_mod.crash_first_attempt(ledger.key, 30).on_queue(queue)
    task_id = await pending.visibility_timeout(VISIBILITY).max_attempts(3).dispatch()
    first = start_worker("--queues", queue)
    await ledger.wait_for(lambda rows: any(r["pid"] == first.pid for r in rows), 15)
    first.signal(signal.SIGKILL)
    first.wait(10)
    killed_at = time.time()
    second = start_worker("--queues", queue)
    rows = await ledger.wait_for(lambda rows: any(r["event"] == "end" for r in rows), 20)
    [restart] = [r for r in rows if r["event"] == "start" and r["pid"] == second.pid]
    assert restart["task_id"] == task_id
    assert restart["attempt"] == 2
    assert restart["t"] <= killed_at + VISIBILITY + MAINTENANCE_SECONDS + 3
    assert [r["pid"] for r in rows if r["event"] == "end"] == [second.pid]
    second.signal(signal.SIGTERM)
    assert second.wait(10) == 0


@on_brokers
async def test_a_crash_in_the_last_attempt_lands_in_the_dead_letter_store_with_worker_lost(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    queue_sizes: Sizes,
) -> None:
    pending = tasks_mod.crash_first_attempt(ledger.key, 30).on_queue(queue)
    task_id = await pending.visibility_timeout(VISIBILITY).max_attempts(1).dispatch()
    first = start_worker("--queues", queue)
    await ledger.wait_for(lambda rows: len(rows) == 1, 15)
    first.signal(signal.SIGKILL)
    first.wait(10)
    second = start_worker("--queues", queue)
    driver = await handle.driver()
    deadline = time.monotonic() + VISIBILITY + MAINTENANCE_SECONDS + 5
    while (await queue_sizes(queue))["dead"] == 0:
        assert time.monotonic() < deadline, "the task never reached the dead-letter store"
        await asyncio.sleep(0.1)
    [entry] = await driver.dead_letters(queue)  # type: ignore[attr-defined]
    assert (entry.task_id, entry.error_type, entry.attempts) == (task_id, "WorkerLostError", 1)
    assert "worker lost" in entry.error_message
    assert len(ledger.rows("start")) == 1  # never run a second time
    second.signal(signal.SIGTERM)
    assert second.wait(10) == 0


@on_brokers
@pytest.mark.parametrize("variant", ["async", "sync"])
async def test_a_long_task_is_never_handed_to_a_second_worker(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], variant: str
) -> None:
    # C06: lease 1.5 s, task 5 s, two workers polling the same queue.
    body = tasks_mod.slow if variant == "async" else tasks_mod.slow_sync
    await body(ledger.key, 5).on_queue(queue).visibility_timeout(1.5).dispatch()
    workers = [start_worker("--queues", queue), start_worker("--queues", queue)]
    rows = await ledger.wait_for(lambda rows: any(r["event"] == "end" for r in rows), 20)
    await asyncio.sleep(1.0)
    rows = ledger.rows()
    assert [r["event"] for r in rows] == ["start", "end"]
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait(10) == 0


async def test_an_async_task_blocking_the_loop_keeps_its_lease_and_is_reported(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    # C16.2/C16.3: lease 1.5 s, the task blocks its worker's loop for 4 s, timeout 1 s.
    pending = tasks_mod.hog(ledger.key, 4).on_queue(queue).visibility_timeout(1.5)
    task_id = await pending.timeout(1).max_attempts(1).dispatch()
    workers = [start_worker("--queues", queue), start_worker("--queues", queue)]
    await ledger.wait_for(lambda rows: any(r["event"] == "end" for r in rows), 20)
    await asyncio.sleep(1.0)
    assert [r["event"] for r in ledger.rows()] == ["start", "end"]  # never handed out twice
    driver = await handle.driver()
    deadline = time.monotonic() + 5
    while (await queue_keys(redis_url, queue))["dead"] == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    [entry] = await driver.dead_letters(queue)  # type: ignore[attr-defined]
    assert (entry.task_id, entry.error_type) == (task_id, "TaskTimeoutError")
    for worker in workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait(10) == 0
    logs = "".join(worker.output() for worker in workers)
    assert "event loop is blocked" in logs
    assert f"tests.integration.worker.tasks_mod:hog ({task_id})" in logs
