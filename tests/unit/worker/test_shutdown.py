"""Stopping: drain on the first request, abort on the second, lose nothing (FIELD-CASES C18)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

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


async def test_a_task_still_running_after_the_grace_period_goes_back_to_the_queue(
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
    assert stats.released == 1
    assert (await sizes(handle)).ready == 1
    await work(handle, tasks=[endless], max_tasks=1)
    assert attempts == [1, 1]  # the release was not an attempt


async def test_a_second_request_cancels_running_tasks_and_releases_them_at_once(
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
    assert stats.released == 1
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
    worker = asyncio.get_running_loop().create_task(work(handle, tasks=[], shutdown=shutdown))
    await asyncio.sleep(0)
    shutdown.request()
    stats = await worker
    assert stats.handled == 0
    driver = await memory(handle)
    assert (await driver.sizes("q")).in_flight == 0
