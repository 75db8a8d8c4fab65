"""Stopping: drain on the first request, abort on the second, lose nothing (FIELD-CASES C18)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from asynctasq.errors import DriverError
from asynctasq.handle import Handle
from asynctasq.tasks import current_task, dispatch_many, task
from asynctasq.worker import Shutdown, run_worker
from tests.unit.worker.conftest import memory, sizes, work

pytestmark = pytest.mark.anyio


async def test_running_tasks_finish_and_nothing_new_starts_after_a_stop_request(
    handle: Handle,
) -> None:
    started: list[str] = []
    finished: list[str] = []
    both_running = asyncio.Event()
    go = asyncio.Event()

    @task
    async def long(label: str) -> None:
        started.append(label)
        if len(started) == 2:
            both_running.set()
        await go.wait()
        finished.append(label)

    @task
    async def short(label: str) -> None:
        started.append(label)

    await dispatch_many([long("a"), long("b"), *(short(f"s{n}") for n in range(5))])
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(
            handle, tasks=[long, short], concurrency=2, shutdown=shutdown, shutdown_grace_seconds=10
        )
    )
    await both_running.wait()
    shutdown.request()
    go.set()
    stats = await worker
    assert sorted(finished) == ["a", "b"]
    assert sorted(started) == ["a", "b"]
    assert stats.succeeded == 2
    left = await sizes(handle)
    assert (left.ready, left.in_flight) == (5, 0)


async def test_a_task_still_running_after_the_grace_period_is_retried_as_its_next_attempt(
    handle: Handle,
) -> None:
    attempts: list[int] = []
    running = asyncio.Event()

    @task
    async def endless() -> None:
        info = current_task()
        assert info is not None
        attempts.append(info.attempt)
        running.set()
        if len(attempts) == 1:
            await asyncio.sleep(60)

    await endless().dispatch()
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(handle, tasks=[endless], shutdown=shutdown, shutdown_grace_seconds=0.05)
    )
    await running.wait()
    shutdown.request()
    stats = await worker
    assert (stats.retried, stats.released) == (1, 0)
    assert (await sizes(handle)).ready == 1
    await work(handle, tasks=[endless], max_tasks=1)
    assert attempts == [1, 2]  # the cancelled execution was an attempt


async def test_a_task_longer_than_the_grace_is_dead_lettered_after_its_last_attempt(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    # Redeploying while it runs must not restart it at attempt 1 forever.
    attempts: list[int] = []
    running = asyncio.Event()

    @task(max_attempts=2)
    async def too_long() -> None:
        info = current_task()
        assert info is not None
        attempts.append(info.attempt)
        running.set()
        await asyncio.sleep(60)

    await too_long().dispatch()
    for _ in range(2):  # two deploys, each stopping the worker while the task runs
        running.clear()
        shutdown = Shutdown()
        worker = asyncio.get_running_loop().create_task(
            work(handle, tasks=[too_long], shutdown=shutdown, shutdown_grace_seconds=0)
        )
        await running.wait()
        shutdown.request()
        stats = await worker
    assert attempts == [1, 2]
    assert (stats.retried, stats.dead_lettered, stats.released) == (0, 1, 0)
    [entry] = await (await memory(handle)).dead_letters("q")
    assert entry.error_type == "TaskCancelledError"
    assert entry.error_message.startswith("cancelled at shutdown")
    assert entry.attempts == 2
    left = await sizes(handle)
    assert (left.ready, left.in_flight, left.dead) == (0, 0, 1)
    assert "attempt 2/2 failed after" in caplog.text
    assert "dead-lettered: max attempts (2) reached" in caplog.text


async def test_deliveries_claimed_but_not_started_are_released_without_using_an_attempt(
    handle: Handle,
) -> None:
    started = asyncio.Event()
    seen: list[tuple[str, int]] = []

    @task
    async def hold(label: str) -> None:
        info = current_task()
        assert info is not None
        seen.append((label, info.attempt))
        started.set()
        if label == "running" and info.attempt == 1:
            await asyncio.sleep(60)

    await hold("running").dispatch()
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(handle, tasks=[hold], shutdown=shutdown, shutdown_grace_seconds=0, concurrency=2)
    )
    await started.wait()
    await hold("waiting").dispatch()  # claimed into the free slot's buffer, maybe started
    shutdown.request()
    shutdown.request()
    stats = await worker
    assert stats.retried == 1  # only the one that was running
    await work(handle, tasks=[hold], max_tasks=2)
    assert ("running", 2) in seen
    assert [attempt for label, attempt in seen if label == "waiting"] == [1]


async def test_a_second_request_cancels_running_tasks_and_retries_them_at_once(
    handle: Handle,
) -> None:
    running = asyncio.Event()
    cancelled: list[bool] = []

    @task
    async def stuck() -> None:
        running.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    await stuck().dispatch()
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(handle, tasks=[stuck], shutdown=shutdown, shutdown_grace_seconds=60)
    )
    await running.wait()
    shutdown.request()
    shutdown.request()
    stats = await worker
    assert cancelled == [True]
    assert (stats.retried, stats.released) == (1, 0)
    left = await sizes(handle)
    assert (left.ready, left.in_flight) == (1, 0)


async def test_sigterm_stops_the_worker_gracefully(handle: Handle) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed in the main thread")
    running = asyncio.Event()
    finished: list[bool] = []

    @task
    async def job() -> None:
        running.set()
        await asyncio.sleep(0.05)
        finished.append(True)

    await job().dispatch()
    worker = asyncio.get_running_loop().create_task(
        run_worker(handle, tasks=[job], queues=["q"], concurrency=1, handle_signals=True)
    )
    await running.wait()
    os.kill(os.getpid(), signal.SIGTERM)
    stats = await asyncio.wait_for(worker, 10)
    assert finished == [True]
    assert stats.succeeded == 1
    assert (await sizes(handle)).in_flight == 0


async def test_an_idle_worker_stops_promptly_on_request(handle: Handle) -> None:
    shutdown = Shutdown()

    @task
    async def unused() -> None:
        return None

    worker = asyncio.get_running_loop().create_task(work(handle, tasks=[unused], shutdown=shutdown))
    await asyncio.sleep(0)
    shutdown.request()
    stats = await worker
    assert stats.handled == 0
    driver = await memory(handle)
    assert (await driver.sizes("q")).in_flight == 0


@pytest.mark.parametrize("outcome", ["dead_letter", "retry"])
async def test_a_task_whose_outcome_cannot_be_stored_at_shutdown_keeps_its_attempt_counted(
    handle: Handle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    outcome: str,
) -> None:
    # It ran; storing its retry or dead letter kept failing until the worker stopped.
    # Releasing it as unstarted undid the count: a max_attempts=1 task ran twice as attempt 1.
    runs: list[int] = []
    refused = asyncio.Event()

    @task(max_attempts=1 if outcome == "dead_letter" else 2, retry_delay=0)
    async def fails() -> None:
        info = current_task()
        assert info is not None
        runs.append(info.attempt)
        raise ValueError("the real error")

    driver = await memory(handle)
    original = getattr(driver, outcome)

    async def refusing(*args: object) -> None:
        refused.set()
        raise DriverError("memory", outcome, "injected refusal")

    await fails().dispatch()
    monkeypatch.setattr(driver, outcome, refusing)
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(handle, tasks=[fails], shutdown=shutdown, shutdown_grace_seconds=0, wait_seconds=0.01)
    )
    await refused.wait()
    shutdown.request()
    stats = await worker
    assert (stats.released, stats.retried, stats.dead_lettered) == (0, 0, 0)
    left = await sizes(handle)
    assert (left.ready, left.in_flight) == (0, 1)  # left to its lease, not released
    assert "its outcome could not be stored before the worker stopped" in caplog.text
    monkeypatch.setattr(driver, outcome, original)
    later = time.monotonic() + 7200  # the 3600 s lease has expired
    monkeypatch.setattr(driver, "_clock", lambda: later)
    stats = await work(handle, tasks=[fails], max_tasks=1)
    if outcome == "dead_letter":
        assert runs == [1]  # not run again: its one attempt was used
        [entry] = await driver.dead_letters("q")
        assert (entry.error_type, entry.attempts) == ("WorkerLostError", 1)
    else:
        assert runs == [1, 2]  # the next run is attempt 2
    assert stats.dead_lettered == 1


@pytest.mark.parametrize(("threshold", "named"), [(0.0, True), (3600.0, False)])
async def test_a_slow_stop_step_is_logged_with_its_name(
    handle: Handle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    threshold: float,
    named: bool,
) -> None:
    monkeypatch.setattr("asynctasq.worker.shutdown.SLOW_STOP_STEP_SECONDS", threshold)
    shutdown = Shutdown()
    ran = asyncio.Event()

    @task(queue="q")
    async def first() -> None:
        ran.set()

    await first().dispatch()
    worker = asyncio.get_running_loop().create_task(work(handle, tasks=[first], shutdown=shutdown))
    await ran.wait()  # the worker is in its run loop
    shutdown.request()
    with caplog.at_level("WARNING", logger="asynctasq.worker"):
        await worker
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stopping took")]
    expected = ["the final acks", "leaving the worker registry", "closing the process pool"]
    assert [any(step.endswith(f"in: {name}") for step in steps) for name in expected] == [
        named
    ] * len(expected)
