"""Sync tasks run in bounded threads; timeouts are reported on time (FIELD-CASES C16)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import types

import pytest

from asynctasq.handle import Handle
from asynctasq.tasks import SyncTask, TaskConfig, task
from asynctasq.worker.stall import StallWatch
from asynctasq.worker.threads import ThreadRunner
from tests.unit.worker.conftest import dead, work

pytestmark = pytest.mark.anyio


async def test_a_sync_timeout_is_reported_while_its_thread_still_runs_and_the_loop_stays_free(
    handle: Handle,
) -> None:
    release = threading.Event()
    quick_done: list[bool] = []
    reported: list[str] = []

    class Blocker(SyncTask):
        config: TaskConfig = {"timeout": 0.5, "max_attempts": 1}

        def execute(self) -> None:
            release.wait(15)  # a blocking call the worker cannot interrupt

        def failed(self, exc: BaseException) -> None:
            reported.append(type(exc).__name__)
            release.set()  # only the timeout report lets the thread end: no deadlock means
            # the failure was settled while the thread was still blocked

    @task
    async def quick() -> None:
        quick_done.append(release.is_set())

    await Blocker().dispatch()
    for _ in range(5):
        await quick().dispatch()
    stats = await work(handle, tasks=[Blocker, quick], max_tasks=6, concurrency=2)
    assert quick_done == [False] * 5  # ran while the blocker's thread was blocked
    assert reported == ["TaskTimeoutError"]
    assert [e.error_type for e in await dead(handle)] == ["TaskTimeoutError"]
    assert stats.succeeded == 5


async def test_an_async_task_that_blocks_past_its_timeout_counts_as_timed_out(
    handle: Handle,
) -> None:
    @task(timeout=0.05, max_attempts=1)
    async def hog() -> None:
        time.sleep(0.2)  # noqa: ASYNC251 -- the mistake under test

    await hog().dispatch()
    await work(handle, tasks=[hog], max_tasks=1)
    [entry] = await dead(handle)
    assert entry.error_type == "TaskTimeoutError"


async def test_a_blocked_loop_is_reported_naming_the_running_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = types.SimpleNamespace(task_name="mod:hog", task_id="abc123")
    state = types.SimpleNamespace(running=[types.SimpleNamespace(message=message)])
    watch = StallWatch(state, threshold_seconds=0.1)  # type: ignore[arg-type]
    beating = asyncio.get_running_loop().create_task(watch.run())
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger="asynctasq.worker"):
        time.sleep(0.4)  # noqa: ASYNC251 -- block the loop on purpose
        await asyncio.sleep(0.2)
    beating.cancel()
    assert "event loop is blocked" in caplog.text
    assert "mod:hog (abc123)" in caplog.text


async def test_the_thread_runner_never_starts_more_threads_than_its_limit() -> None:
    runner = ThreadRunner(2)
    gate = threading.Event()
    calls = [runner.submit(lambda: gate.wait(5)) for _ in range(6)]
    assert runner.thread_count == 2
    gate.set()
    await asyncio.gather(*(call.result for call in calls))
    await asyncio.gather(*(call.finished for call in calls))
    assert runner.thread_count == 2
    runner.close()


async def test_the_thread_runner_returns_values_and_exceptions_in_the_callers_context() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outside")
    var.set("inside")
    runner = ThreadRunner(1)
    assert await runner.submit(var.get).result == "inside"

    def boom() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await runner.submit(boom).result
    runner.close()
