"""An SQL pool smaller than the worker needs: a warning at start, then waiting, not errors (C35).

``max_pool_size=2`` with a worker at concurrency 8 whose tasks each make three database
round trips of their own, and a producer gathering 200 dispatches at once: nothing fails,
every task runs, and the pool never holds more than two connections.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from asynctasq.handle import configured
from asynctasq.tasks import current_task, task
from asynctasq.worker import run_worker
from tests.integration.sql_servers import migrated

pytestmark = pytest.mark.anyio

TOTAL = 200


@pytest.mark.parametrize("name", ["postgres", "mysql"])
async def test_a_small_sql_pool_is_warned_about_and_every_task_still_runs(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[int] = []
    peak: list[int] = [0]

    async with migrated(name, tmp_path, max_pool_size=2) as (_, settings):  # noqa: SIM117
        async with configured(driver=name, **{name: settings}) as handle:
            driver: Any = await handle.driver()

            def pool_size() -> int:  # white box: the connections the pool holds now
                pool = driver._db._pool
                return int(pool.get_size() if name == "postgres" else pool.size)

            @task
            async def touch(n: int) -> None:
                info = current_task()
                assert info is not None
                for _ in range(3):  # three round trips through the same pool
                    await driver.sizes(info.queue)
                    peak[0] = max(peak[0], pool_size())
                ran.append(n)

            await asyncio.gather(*(touch(n).on_queue("pool").dispatch() for n in range(TOTAL)))
            peak[0] = max(peak[0], pool_size())
            with caplog.at_level(logging.WARNING, logger="asynctasq.worker"), anyio.fail_after(60):
                stats = await run_worker(
                    handle,
                    tasks=[touch],
                    queues=["pool"],
                    concurrency=8,
                    max_tasks=TOTAL,
                    handle_signals=False,
                )
    assert f"{name} driver's connection pool holds 2 connections" in caplog.text
    assert f"ASYNCTASQ_{name.upper()}_MAX_POOL_SIZE" in caplog.text
    assert sorted(ran) == list(range(TOTAL))
    assert (stats.succeeded, stats.dead_lettered) == (TOTAL, 0)
    assert peak[0] <= 2
