"""What the worker does with each outcome: ack, retry, dead-letter (FIELD-CASES C14)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from asynctasq.drivers.protocol import Delivery, Outgoing
from asynctasq.errors import TaskTimeoutError
from asynctasq.handle import Handle
from asynctasq.tasks import AsyncTask, SyncTask, TaskConfig, current_task, task
from tests.unit.worker.conftest import dead, memory, sizes, work

pytestmark = pytest.mark.anyio


async def test_a_successful_task_runs_once_and_is_acked(handle: Handle) -> None:
    ran: list[tuple[int, int]] = []

    @task
    async def add(x: int, y: int) -> None:
        ran.append((x, y))

    await add(1, 2).dispatch()
    stats = await work(handle, tasks=[add], max_tasks=1)
    assert ran == [(1, 2)]
    assert (stats.succeeded, stats.retried, stats.dead_lettered) == (1, 0, 0)
    assert await sizes(handle) == type(await sizes(handle))(0, 0, 0, 0)


async def test_a_sync_task_runs_in_a_worker_thread(handle: Handle) -> None:
    import threading

    threads: list[str] = []

    @task
    def where() -> None:
        threads.append(threading.current_thread().name)

    await where().dispatch()
    await work(handle, tasks=[where], max_tasks=1)
    assert threads[0].startswith("asynctasq-sync")


async def test_an_always_failing_task_runs_max_attempts_times_then_is_dead_lettered_once(
    handle: Handle,
) -> None:
    attempts: list[int] = []
    failures: list[BaseException] = []

    class Flaky(AsyncTask):
        config: TaskConfig = {"max_attempts": 4}

        async def execute(self) -> None:
            info = current_task()
            assert info is not None
            attempts.append(info.attempt)
            raise ValueError(f"attempt {info.attempt}")

        async def failed(self, exc: BaseException) -> None:
            failures.append(exc)

    task_id = await Flaky().dispatch()
    stats = await work(handle, tasks=[Flaky], max_tasks=4)
    assert attempts == [1, 2, 3, 4]
    assert [str(exc) for exc in failures] == ["attempt 4"]
    [entry] = await dead(handle)
    assert (entry.task_id, entry.error_type, entry.error_message) == (
        task_id,
        "ValueError",
        "attempt 4",
    )
    assert entry.attempts == 4
    assert (stats.retried, stats.dead_lettered) == (3, 1)


async def test_should_retry_true_never_exceeds_max_attempts(handle: Handle) -> None:
    runs: list[int] = []

    class Stubborn(SyncTask):
        config: TaskConfig = {"max_attempts": 4}

        def execute(self) -> None:
            runs.append(1)
            raise RuntimeError("again")

        def should_retry(self, exc: BaseException) -> bool:
            return True

    await Stubborn().dispatch()
    await work(handle, tasks=[Stubborn], max_tasks=4, concurrency=1)
    assert len(runs) == 4
    assert len(await dead(handle)) == 1
    left = await sizes(handle)
    assert (left.ready, left.delayed, left.in_flight) == (0, 0, 0)


async def test_should_retry_false_dead_letters_at_once_and_calls_failed(handle: Handle) -> None:
    failed: list[str] = []

    class Picky(AsyncTask):
        async def execute(self) -> None:
            raise PermissionError("denied")

        def should_retry(self, exc: BaseException) -> bool:
            return not isinstance(exc, PermissionError)

        async def failed(self, exc: BaseException) -> None:
            failed.append(type(exc).__name__)

    await Picky().dispatch()
    stats = await work(handle, tasks=[Picky], max_tasks=1)
    assert failed == ["PermissionError"]
    assert [e.error_type for e in await dead(handle)] == ["PermissionError"]
    assert stats.retried == 0


async def test_timeouts_count_as_failures_and_end_in_the_dead_letter_store(
    handle: Handle,
) -> None:
    runs: list[int] = []

    @task(timeout=0.05, max_attempts=4)
    async def sleepy() -> None:
        runs.append(1)
        await asyncio.sleep(30)

    await sleepy().dispatch()
    await work(handle, tasks=[sleepy], max_tasks=4)
    assert len(runs) == 4
    [entry] = await dead(handle)
    assert entry.error_type == TaskTimeoutError.__name__
    assert "timeout of 0.05 s" in entry.error_message


async def test_max_attempts_one_goes_straight_to_the_dead_letter_store(handle: Handle) -> None:
    runs: list[int] = []

    @task(max_attempts=1)
    async def once() -> None:
        runs.append(1)
        raise KeyError("k")

    await once().dispatch()
    await work(handle, tasks=[once], max_tasks=1)
    assert runs == [1]
    assert [e.attempts for e in await dead(handle)] == [1]


async def test_a_failing_failed_hook_is_logged_and_the_worker_goes_on(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    class Grumpy(AsyncTask):
        config: TaskConfig = {"max_attempts": 1}

        async def execute(self) -> None:
            raise ValueError("task")

        async def failed(self, exc: BaseException) -> None:
            raise RuntimeError("hook")

    @task
    async def after() -> None:
        return None

    await Grumpy().dispatch()
    await after().dispatch()
    stats = await work(handle, tasks=[Grumpy, after], max_tasks=2, concurrency=1)
    assert stats.succeeded == 1
    assert [e.error_type for e in await dead(handle)] == ["ValueError"]
    assert "failed() hook" in caplog.text


async def recorded_retries(handle: Handle, monkeypatch: pytest.MonkeyPatch) -> list[Outgoing]:
    driver = await memory(handle)
    seen: list[Outgoing] = []
    original = driver.retry

    async def spy(delivery: Delivery, message: Outgoing) -> None:
        seen.append(message)
        await original(delivery, message)

    monkeypatch.setattr(driver, "retry", spy)
    return seen


@pytest.mark.parametrize(
    ("strategy", "delays"),
    [("fixed", [0.01, 0.01, 0.01]), ("exponential", [0.01, 0.02, 0.04])],
)
async def test_retries_wait_the_strategy_delay(
    handle: Handle, monkeypatch: pytest.MonkeyPatch, strategy: str, delays: Sequence[float]
) -> None:
    retries = await recorded_retries(handle, monkeypatch)

    @task(max_attempts=4, retry_delay=0.01, retry_strategy=strategy)
    async def failing() -> None:
        raise ValueError

    await failing().dispatch()
    await work(handle, tasks=[failing], max_tasks=4)
    assert [o.delay_seconds for o in retries] == pytest.approx(delays)
    assert len(await dead(handle)) == 1


async def test_the_attempt_count_survives_across_deliveries(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    retries = await recorded_retries(handle, monkeypatch)
    seen: list[int] = []

    @task(max_attempts=3)
    async def count() -> None:
        info = current_task()
        assert info is not None
        seen.append(info.attempt)
        raise ValueError

    await count().dispatch()
    await work(handle, tasks=[count], max_tasks=1)  # a first worker runs attempt 1 and stops
    await work(handle, tasks=[count], max_tasks=2)  # a second one continues at 2, not at 1
    assert seen == [1, 2, 3]
    assert len(retries) == 2


async def test_a_task_dispatches_follow_ups_through_the_workers_handle(handle: Handle) -> None:
    from asynctasq import context

    ran: list[str] = []

    @task
    async def child(label: str) -> None:
        ran.append(label)

    @task
    async def parent() -> None:
        await child("from async").dispatch()

    @task
    def sync_parent() -> None:
        assert current_task() is not None  # the thread runs in the slot's context
        ran.append("sync saw its task info")

    await parent().dispatch()
    await sync_parent().dispatch()
    token = context.make_current(None)  # the caller has no current handle
    try:
        await work(handle, tasks=[child, parent, sync_parent], max_tasks=3, concurrency=1)
    finally:
        context.restore(token)
    assert sorted(ran) == ["from async", "sync saw its task info"]


async def test_concurrent_tasks_each_see_their_own_task_info(handle: Handle) -> None:
    seen: dict[str, str] = {}
    all_started = asyncio.Event()
    started = 0

    @task
    async def who(label: str) -> None:
        nonlocal started
        started += 1
        if started == 4:
            all_started.set()
        await all_started.wait()  # all four are in flight at once here
        info = current_task()
        assert info is not None
        seen[label] = info.task_id

    ids = [await who(str(n)).dispatch() for n in range(4)]
    await work(handle, tasks=[who], max_tasks=4, concurrency=4)
    assert [seen[str(n)] for n in range(4)] == ids
