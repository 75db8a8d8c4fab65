"""A Redis pool smaller than the worker needs: a warning at start, then waiting, not errors."""

from __future__ import annotations

import logging

import anyio
import pytest

from asynctasq.handle import configured
from asynctasq.tasks import dispatch_many, task
from asynctasq.worker import run_worker

pytestmark = pytest.mark.anyio


async def test_a_small_redis_pool_is_warned_about_and_every_task_still_runs(
    redis_url: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []

    @task
    async def touch(n: int) -> None:
        ran.append(n)

    settings = {"url": redis_url, "max_connections": 2}
    async with configured(driver="redis", redis=settings) as handle:
        await dispatch_many([touch(n).on_queue(queue) for n in range(40)])
        with caplog.at_level(logging.WARNING, logger="asynctasq.worker"), anyio.fail_after(30):
            stats = await run_worker(
                handle,
                tasks=[touch],
                queues=[queue],
                concurrency=8,
                max_tasks=40,
                handle_signals=False,
            )
    assert "redis driver's connection pool holds 2 connections" in caplog.text
    assert "Raise ASYNCTASQ_REDIS_MAX_CONNECTIONS (redis.max_connections) to" in caplog.text
    assert "may use 11 at once" in caplog.text
    assert sorted(ran) == list(range(40))
    assert (stats.succeeded, stats.dead_lettered) == (40, 0)
