"""The database drops every connection of a running worker: it reconnects, loses nothing (C09).

The shared PostgreSQL and MySQL servers cannot be stopped from a test, so the outage is
their side closing the worker's connections mid-run (``pg_terminate_backend`` / ``KILL``
of every session of a user only this test uses), twice, while tasks run, are acked and
their leases renewed. The worker must stay up, every task must complete (a claim whose
answer was lost comes back after its short visibility timeout), and work dispatched after
the outage must run promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomysql
import anyio
import asyncpg
import pytest

from asynctasq.config.resolve import resolve
from asynctasq.drivers.mysql import connect_params
from asynctasq.handle import configured
from asynctasq.tasks import dispatch_many, task
from asynctasq.worker import Shutdown, run_worker
from tests.integration.sql_servers import (
    MYSQL_DSN,
    MYSQL_HOST,
    MYSQL_PORT,
    PG_DSN,
    PG_HOST,
    PG_PORT,
    drop,
    group_settings,
    migrate,
    require_server,
)

pytestmark = pytest.mark.anyio

PASSWORD = "outage-pass"


@contextlib.asynccontextmanager
async def own_user(name: str) -> AsyncIterator[str]:
    """Create a database user only this test uses; yield its DSN; drop it (and its tables)."""
    require_server(name)
    user = f"drop{uuid.uuid4().hex[:10]}"
    if name == "postgres":
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f"CREATE ROLE {user} LOGIN PASSWORD '{PASSWORD}'")
        await admin.execute(f"GRANT ALL ON SCHEMA public TO {user}")
        try:
            yield f"postgresql://{user}:{PASSWORD}@{PG_HOST}:{PG_PORT}/test"
        finally:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", user
            )
            await admin.execute(f"DROP OWNED BY {user}")
            await admin.execute(f"DROP ROLE {user}")
            await admin.close()
        return
    admin = await aiomysql.connect(**connect_params(MYSQL_DSN), autocommit=True)
    async with admin.cursor() as cursor:
        await cursor.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'")
        await cursor.execute(f"GRANT ALL ON test.* TO '{user}'@'127.0.0.1'")
    try:
        yield f"mysql://{user}:{PASSWORD}@{MYSQL_HOST}:{MYSQL_PORT}/test"
    finally:
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP USER '{user}'@'127.0.0.1'")
        admin.close()


async def drop_connections(name: str, dsn: str) -> int:
    """Close every server session of the DSN's user from the server side; return how many."""
    user = dsn.split("//")[1].split(":")[0]
    if name == "postgres":
        admin = await asyncpg.connect(PG_DSN)
        try:
            rows = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", user
            )
        finally:
            await admin.close()
        return len(rows)
    admin = await aiomysql.connect(**connect_params(MYSQL_DSN), autocommit=True)
    try:
        async with admin.cursor() as cursor:
            await cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE user = %s", (user,)
            )
            sessions = [row[0] for row in await cursor.fetchall()]
            for session in sessions:
                with contextlib.suppress(aiomysql.Error):
                    await cursor.execute(f"KILL {int(session)}")
    finally:
        admin.close()
    return len(sessions)


@pytest.mark.parametrize("name", ["postgres", "mysql"])
async def test_a_worker_whose_connections_are_dropped_reconnects_and_loses_nothing(
    name: str, tmp_path: Path
) -> None:
    done: list[str] = []
    progress = asyncio.Event()

    @task(visibility_timeout=2, retry_delay=0, retry_strategy="fixed")
    async def work(label: str) -> None:
        await asyncio.sleep(0.3)
        done.append(label)
        progress.set()

    async def until(count: int, prefix: str) -> None:
        while len({label for label in done if label.startswith(prefix)}) < count:
            progress.clear()
            await progress.wait()

    async with own_user(name) as dsn:
        settings = group_settings(name, tmp_path, dsn=dsn)
        await migrate(resolve({"driver": name, name: settings}, environ={}).config, name)
        try:
            async with configured(driver=name, **{name: settings}) as handle:
                await dispatch_many([work(f"before-{n}").on_queue("q") for n in range(20)])
                shutdown = Shutdown()
                running = asyncio.create_task(
                    run_worker(
                        handle,
                        tasks=[work],
                        queues=["q"],
                        concurrency=4,
                        shutdown=shutdown,
                        handle_signals=False,
                    )
                )
                for _ in range(2):
                    await asyncio.sleep(0.8)
                    assert await drop_connections(name, dsn) >= 1
                with anyio.fail_after(30):
                    await until(20, "before")
                later = await dispatch_many([work(f"after-{n}").on_queue("q") for n in range(5)])
                with anyio.fail_after(10):
                    await until(5, "after")
                assert not running.done()  # the worker stayed up throughout
                shutdown.request("test done")
                with anyio.fail_after(30):
                    await running
                driver = await handle.driver()
                sizes = await driver.sizes("q")
        finally:
            await drop(name, settings)
    assert len(later) == 5
    assert set(done) == {f"before-{n}" for n in range(20)} | {f"after-{n}" for n in range(5)}
    assert (sizes.ready, sizes.in_flight, sizes.dead) == (0, 0, 0)
