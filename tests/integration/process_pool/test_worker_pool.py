"""Process-pool tasks through real ``python -m asynctasq worker`` processes on Redis.

FIELD-CASES C39 (crashing children, recycling, shutdown, context vars), C06 variant C
(a CPU loop in the pool keeps its lease), C16 (a process task's timeout stops it).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many
from tests.integration.process_pool import pool_tasks
from tests.integration.process_pool.conftest import (
    Ledger,
    Worker,
    alive,
    eventually,
    pool_processes_of,
    queue_keys,
    worker_env,
)

# pool processes start slowly on a busy machine: generous limits, no speed assertions
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

START_SECONDS = 60.0  # a worker with a pool starts its pool processes first (slow when loaded)


async def dead_entries(handle: Handle, queue: str, count: int, seconds: float) -> list[Any]:
    """Wait until the queue's dead-letter store holds ``count`` entries; return them."""
    driver = await handle.driver()
    deadline = time.monotonic() + seconds
    while True:
        entries: list[Any] = await driver.dead_letters(queue)  # type: ignore[attr-defined]
        if len(entries) >= count:
            return entries
        if time.monotonic() > deadline:
            pytest.fail(f"{len(entries)} of {count} dead letters within {seconds} s: {entries}")
        await asyncio.sleep(0.05)


def stop(worker: Worker, seconds: float = 15) -> None:
    worker.signal(signal.SIGTERM)
    assert worker.wait(seconds) == 0, worker.output()


async def test_all_four_modes_run_and_process_modes_run_in_pool_processes(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    key = ledger.key
    await dispatch_many(
        [
            pool_tasks.plain_async(key).on_queue(queue),
            pool_tasks.plain_sync(key).on_queue(queue),
            pool_tasks.cpu(key, 1000).on_queue(queue),
            pool_tasks.cpu_async(key, 1000).on_queue(queue),
            pool_tasks.Crunch(key=key).on_queue(queue),
            pool_tasks.CrunchAsync(key=key).on_queue(queue),
        ]
    )
    worker = start_worker("--queues", queue, "--process-pool-size", "2")
    rows = await ledger.wait_for(lambda rows: len(rows) == 6, START_SECONDS)
    pids = {row["mode"]: row["pid"] for row in rows}
    assert pids["async"] == pids["sync"] == worker.pid
    pool = set(pool_processes_of(worker.pid))
    assert len(pool) == 2
    for mode in ("sync_process", "async_process", "SyncProcessTask", "AsyncProcessTask"):
        assert pids[mode] in pool, mode
    assert "falling back" not in worker.output()  # the worker's own pool has warm loops
    stop(worker)
    assert not any(alive(pid) for pid in pool)
    assert "Traceback" not in worker.output()


async def test_a_process_task_dispatches_another_task_through_its_pool_handle(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    await pool_tasks.fan_out(ledger.key, queue).on_queue(queue).dispatch()
    worker = start_worker("--queues", queue, "--process-pool-size", "1")
    rows = await ledger.wait_for(lambda rows: len(rows) == 2, START_SECONDS)
    by_event = {row["event"]: row for row in rows}
    assert by_event["dispatched"]["pid"] != worker.pid  # dispatched in the pool process
    assert by_event["run"]["pid"] == worker.pid  # and run by the worker as a plain task
    assert by_event["run"]["label"] == "from the pool"
    assert by_event["run"]["task_id"] == by_event["dispatched"]["child"]
    stop(worker)


async def test_crashing_pool_processes_fail_only_their_task_which_is_retried_then_dead(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    redis_url: str,
) -> None:
    """FIELD-CASES C39 steps 1-3."""
    key = ledger.key
    normal = [pool_tasks.cpu(key, 20_000).on_queue(queue) for _ in range(50)]
    crashes = [
        pool_tasks.crash(key, mode).on_queue(queue).max_attempts(2).retry_after(0)
        for mode in pool_tasks.CRASH_MODES
    ]
    mixed = normal[:]
    for index, pending in enumerate(crashes):
        mixed.insert(index * 8, pending)
    ids = await dispatch_many(mixed)
    crash_ids = {ids[mixed.index(p)]: p.args[1] for p in crashes}
    env = worker_env(redis_url, ASYNCTASQ_PROCESS_POOL_SIZE="2")
    worker = start_worker("--queues", queue, "--concurrency", "4", env=env)
    entries = await dead_entries(handle, queue, len(crashes), 120)
    await ledger.wait_for(lambda rows: len([r for r in rows if r["event"] == "run"]) == 50, 120)
    assert worker.process.poll() is None  # the worker survived every crash
    starts = Counter(row["task_id"] for row in ledger.rows("start"))
    assert starts == dict.fromkeys(crash_ids, 2)  # each crash task ran exactly twice
    errors = {entry.task_id: entry for entry in entries}
    assert set(errors) == set(crash_ids)
    expected = {
        "exit": ("PoolProcessDiedError", "exited with code 1 before returning"),
        "sigkill": ("PoolProcessDiedError", "was killed by SIGKILL"),
        "segfault": ("PoolProcessDiedError", "was killed by SIGSEGV"),
        "unpicklable_exception": ("SerializationError", "raised LockedError: holding a lock"),
        "unrebuildable_exception": ("SerializationError", "raised NeedsTwoError: this and that"),
        "unpicklable_result": ("SerializationError", "cannot be sent back"),
    }
    for task_id, mode in crash_ids.items():
        entry = errors[task_id]
        error_type, words = expected[mode]
        assert (entry.error_type, entry.attempts) == (error_type, 2), mode
        assert words in entry.error_message, (mode, entry.error_message)
        assert "pool_tasks:crash" in entry.error_message
    await eventually(lambda: len(pool_processes_of(worker.pid)) == 2)
    assert (await queue_keys(redis_url, queue))["ready"] == 0
    stop(worker)


async def test_recycled_processes_run_every_task_and_the_worker_stops_promptly(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    """FIELD-CASES C39 step 4: max_tasks_per_child=1, 20 CPU tasks, SIGTERM."""
    await dispatch_many([pool_tasks.cpu(ledger.key, 10_000).on_queue(queue) for _ in range(20)])
    worker = start_worker(
        "--queues",
        queue,
        "--process-pool-size",
        "2",
        "--process-pool-max-tasks-per-child",
        "1",
        "--shutdown-timeout",
        "5",
    )
    rows = await ledger.wait_for(lambda rows: len(rows) == 20, 150)
    assert len({row["pid"] for row in rows}) == 20  # a new process for every task
    pool = pool_processes_of(worker.pid)
    stop(worker, 30)  # --shutdown-timeout 5: no hang (the test fails if it waits longer)
    assert not any(alive(pid) for pid in pool)


async def test_a_process_task_past_its_timeout_is_stopped_with_its_process(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
) -> None:
    pending = pool_tasks.sleeper(ledger.key, 60).on_queue(queue).timeout(1).max_attempts(1)
    task_id = await pending.dispatch()
    worker = start_worker("--queues", queue, "--process-pool-size", "1")
    [start] = await ledger.wait_for(lambda rows: len(rows) == 1, START_SECONDS)
    [entry] = await dead_entries(handle, queue, 1, 60)
    assert (entry.task_id, entry.error_type) == (task_id, "TaskTimeoutError")
    assert "its pool process was killed" in entry.error_message
    await eventually(lambda: not alive(start["pid"]))
    assert ledger.rows("end") == []
    await eventually(lambda: len(pool_processes_of(worker.pid)) == 1)  # replaced
    stop(worker)


async def test_a_cpu_loop_in_the_pool_keeps_its_lease_and_runs_once_on_two_workers(
    handle: Handle, queue: str, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    """FIELD-CASES C06 variant C: visibility timeout 2 s, a 7 s CPU loop in the pool."""
    await pool_tasks.spin(ledger.key, 7).on_queue(queue).visibility_timeout(2).dispatch()
    workers = [start_worker("--queues", queue, "--process-pool-size", "1") for _ in range(2)]
    await ledger.wait_for(lambda rows: len(rows) == 2, START_SECONDS + 10)
    await asyncio.sleep(2.5)  # a wrongly expired lease would have been taken by now
    assert [row["event"] for row in ledger.rows()] == ["start", "end"]
    for worker in workers:
        stop(worker)


async def test_sigterm_releases_a_long_process_task_and_kills_its_process(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    redis_url: str,
) -> None:
    await pool_tasks.sleeper(ledger.key, 60).on_queue(queue).dispatch()
    worker = start_worker("--queues", queue, "--process-pool-size", "1", "--shutdown-timeout", "1")
    [start] = await ledger.wait_for(lambda rows: len(rows) == 1, START_SECONDS)
    stop(worker, 30)  # far less than the task's 60 s: it was not waited for
    assert not alive(start["pid"])
    assert (await queue_keys(redis_url, queue))["ready"] == 1  # back in the queue at once


async def test_tasks_waiting_for_a_pool_process_at_sigterm_are_released_unstarted(
    handle: Handle,
    queue: str,
    ledger: Ledger,
    start_worker: Callable[..., Worker],
    redis_url: str,
) -> None:
    """One pool process, three one-attempt tasks: only the one in the process started."""
    channel = f"asynctasq:test-events:{queue}"
    async with Redis.from_url(redis_url) as client, client.pubsub() as events:
        await events.subscribe(channel)
        pending = pool_tasks.sleeper(ledger.key, 60).on_queue(queue).max_attempts(1)
        await dispatch_many([pending, pending, pending])
        env = worker_env(
            redis_url,
            ASYNCTASQ_EVENTS_ENABLE_EVENT_EMITTER_REDIS="true",
            ASYNCTASQ_EVENTS_CHANNEL=channel,
        )
        worker = start_worker(
            "--queues", queue, "--process-pool-size", "1", "--shutdown-timeout", "1", env=env
        )
        await ledger.wait_for(lambda rows: len(rows) == 1, START_SECONDS)
        stop(worker, 30)
        kinds: Counter[str] = Counter()
        deadline = time.monotonic() + 30
        while kinds["worker_offline"] == 0:  # the worker's last event
            assert time.monotonic() < deadline, f"no worker_offline event: {kinds}"
            found = await events.get_message(ignore_subscribe_messages=True, timeout=1)
            if found is not None:
                kinds[json.loads(found["data"])["event_type"]] += 1
    assert "for 1 running task(s)" in worker.output()
    [entry] = await dead_entries(handle, queue, 1, 10)  # the one that ran used its attempt
    assert entry.error_type == "TaskCancelledError"
    assert (await queue_keys(redis_url, queue))["ready"] == 2  # the two others: no attempt used
    assert (kinds["task_started"], kinds["task_cancelled"]) == (1, 1)


async def test_sigterm_while_the_pool_starts_stops_the_worker_as_usual(
    queue: str, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    env = worker_env(redis_url, POOL_TASKS_IMPORT_SECONDS="60")  # pool processes start slowly
    worker = start_worker("--queues", queue, "--process-pool-size", "1", env=env)
    await eventually(lambda: bool(pool_processes_of(worker.pid)), START_SECONDS)
    pool = pool_processes_of(worker.pid)
    stop(worker, 30)  # not the 60 s the pool process would take to start
    output = worker.output()
    assert "worker stopping (SIGTERM)" in output
    assert " stopped: 0 succeeded, 0 retried, 0 dead-lettered, 0 released" in output
    assert "Traceback" not in output
    await eventually(lambda: not any(alive(pid) for pid in pool))
