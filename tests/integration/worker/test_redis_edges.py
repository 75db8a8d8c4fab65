"""A worker on real Redis: foreign data, cancellation at shutdown, delay precision.

* garbage in the ready list or the delayed set is dead-lettered with its raw bytes; the
  tasks around it run; nothing is stranded in ``:processing`` and nothing is lost;
* a task cancelled at shutdown used an attempt (retried at once, or dead-lettered);
* a delayed task starts within milliseconds of its due time, not up to an interval late.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
import redis
from redis.asyncio import Redis

from asynctasq.drivers.protocol import DeadLetterStore
from asynctasq.handle import Handle, configured
from asynctasq.tasks import current_task, task
from asynctasq.worker import Shutdown, WorkerStats, run_worker

pytestmark = pytest.mark.anyio

INTERVAL = 1.0
"""The default ``delayed_task_interval``: precision must not depend on it."""


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"edge-{uuid.uuid4().hex[:12]}"
    yield name
    with redis.Redis.from_url(redis_url) as client:
        client.delete(*(f"queue:{name}{s}" for s in ("", ":processing", ":delayed", ":dead")))


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
async def handle(redis_url: str, queue: str) -> AsyncIterator[Handle]:
    settings = {"url": redis_url, "delayed_task_interval": INTERVAL}
    defaults = {"queue": queue, "retry_delay": 0, "retry_strategy": "fixed", "max_attempts": 3}
    async with configured(driver="redis", redis=settings, task_defaults=defaults) as opened:
        yield opened


async def work(handle: Handle, queue: str, tasks: list[object], **options: object) -> WorkerStats:
    with anyio.fail_after(30):
        return await run_worker(
            handle,
            tasks=tasks,  # type: ignore[arg-type]
            queues=[queue],
            handle_signals=False,
            **options,  # type: ignore[arg-type]
        )


async def counts(raw: Redis, queue: str) -> tuple[int, int, int, int]:
    """Ready, processing, delayed and dead, straight from Redis."""
    async with raw.pipeline(transaction=False) as pipe:
        pipe.llen(f"queue:{queue}")
        pipe.zcard(f"queue:{queue}:processing")
        pipe.zcard(f"queue:{queue}:delayed")
        pipe.llen(f"queue:{queue}:dead")
        found: list[int] = await pipe.execute()
    ready, processing, delayed, dead = found
    return ready, processing, delayed, dead


@pytest.mark.parametrize("garbage", [b"garbage-not-msgpack", b"abc:def:ghi:jkl"])
async def test_garbage_between_two_tasks_is_dead_lettered_and_both_tasks_run(
    handle: Handle, raw: Redis, queue: str, garbage: bytes
) -> None:
    ran: list[int] = []

    @task
    async def hello(n: int) -> None:
        ran.append(n)

    await hello(1).dispatch()
    await raw.lpush(f"queue:{queue}", garbage)
    await hello(2).dispatch()
    stats = await work(handle, queue, [hello], max_tasks=3, concurrency=1)
    assert ran == [1, 2]
    assert (stats.succeeded, stats.dead_lettered) == (2, 1)
    assert await counts(raw, queue) == (0, 0, 0, 1)
    driver = await handle.driver()
    assert isinstance(driver, DeadLetterStore)
    [entry] = await driver.dead_letters(queue)
    assert entry.body == garbage
    assert entry.error_type == "SerializationError"
    assert entry.error_message.startswith("undecodable payload: cannot decode")


async def test_garbage_in_the_delayed_set_is_dead_lettered_and_delayed_tasks_run(
    handle: Handle, raw: Redis, queue: str
) -> None:
    ran: list[int] = []

    @task
    async def hello(n: int) -> None:
        ran.append(n)

    await hello(1).delay(0.05).dispatch()
    await raw.zadd(f"queue:{queue}:delayed", {b"garbage-not-msgpack": 0})
    await hello(2).delay(0.1).dispatch()
    stats = await work(handle, queue, [hello], max_tasks=3, concurrency=1)
    assert sorted(ran) == [1, 2]
    assert (stats.succeeded, stats.dead_lettered) == (2, 1)
    assert await counts(raw, queue) == (0, 0, 0, 1)


async def run_until_started_then_stop(
    handle: Handle, queue: str, tasks: list[object], started: asyncio.Event
) -> WorkerStats:
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(handle, queue, tasks, shutdown=shutdown, shutdown_grace_seconds=0.1)
    )
    with anyio.fail_after(30):
        await started.wait()
    shutdown.request()
    return await worker


async def test_a_task_cancelled_at_shutdown_runs_again_as_its_next_attempt(
    handle: Handle, raw: Redis, queue: str
) -> None:
    attempts: list[int] = []
    started = asyncio.Event()

    @task(max_attempts=2)
    async def long() -> None:
        info = current_task()
        assert info is not None
        attempts.append(info.attempt)
        started.set()
        await asyncio.sleep(60)

    await long().dispatch()
    first = await run_until_started_then_stop(handle, queue, [long], started)
    assert (first.retried, first.released) == (1, 0)
    assert await counts(raw, queue) == (1, 0, 0, 0)
    started.clear()
    second = await run_until_started_then_stop(handle, queue, [long], started)
    assert attempts == [1, 2]
    assert second.dead_lettered == 1
    assert await counts(raw, queue) == (0, 0, 0, 1)
    driver = await handle.driver()
    assert isinstance(driver, DeadLetterStore)
    [entry] = await driver.dead_letters(queue)
    assert (entry.error_type, entry.attempts) == ("TaskCancelledError", 2)
    assert entry.error_message.startswith("cancelled at shutdown")


async def test_a_one_second_delay_starts_within_milliseconds_of_its_due_time(
    handle: Handle, queue: str
) -> None:
    started: list[float] = []

    @task
    async def stamp() -> None:
        started.append(time.monotonic())

    worker = asyncio.get_running_loop().create_task(work(handle, queue, [stamp], max_tasks=2))
    await asyncio.sleep(0.3)  # the worker is up and idle, its maintenance loop asleep
    dispatched = time.monotonic()
    await stamp().delay(1).dispatch()
    await asyncio.sleep(0.45)  # the second one is dispatched out of step with the first
    second = time.monotonic()
    await stamp().delay(1).dispatch()
    await worker
    lags = [started[0] - dispatched, started[1] - second]
    assert all(1.0 <= lag < 1.3 for lag in lags), lags


async def test_a_one_second_retry_delay_runs_within_milliseconds_of_its_due_time(
    handle: Handle, queue: str
) -> None:
    failed_at: list[float] = []
    started: list[float] = []

    @task(max_attempts=2, retry_delay=1)
    async def flaky() -> None:
        started.append(time.monotonic())
        if len(started) == 1:
            failed_at.append(time.monotonic())
            raise RuntimeError("once")

    await asyncio.sleep(0.2)
    await flaky().dispatch()
    await work(handle, queue, [flaky], max_tasks=2)
    lag = started[1] - failed_at[0]
    assert 1.0 <= lag < 1.3, lag
