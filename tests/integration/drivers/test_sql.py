"""What only the SQL drivers promise: schema, rows, clocks, wake-ups (PostgreSQL, MySQL, SQLite).

The behaviour every driver shares is in ``test_contract.py``; here each test gets its own
migrated tables (``tests/integration/sql_servers.py``) and looks at the rows themselves.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiomysql
import anyio
import attrs
import pytest

from asynctasq.config.records import Config
from asynctasq.config.resolve import resolve
from asynctasq.drivers import build_driver, sql
from asynctasq.drivers.mysql import client_params, connect_params
from asynctasq.drivers.protocol import (
    CompletedStore,
    CompletedTask,
    DeadLetterEntry,
    Driver,
    Outgoing,
    QueueCatalog,
    QueueSizes,
    WorkerInfo,
    WorkerRegistry,
)
from asynctasq.drivers.sql_connector import side_tables
from asynctasq.errors import DriverError, MessageTooLargeError
from tests.integration.sql_servers import (
    SQL_DRIVERS,
    drop,
    group_settings,
    migrate,
    migrated,
    query,
    require_server,
)

pytestmark = pytest.mark.anyio


@attrs.frozen
class Database:
    """A migrated SQL driver's configuration and its group's settings."""

    name: str
    config: Config
    settings: dict[str, Any]

    def open(self) -> Driver:
        return build_driver(self.config)

    async def rows(self, sql_text: str) -> list[tuple[Any, ...]]:
        table = self.settings["queue_table"]
        dead = self.settings["dead_letter_table"]
        return await query(self.name, self.settings, sql_text.format(q=table, d=dead))


@pytest.fixture(params=SQL_DRIVERS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated(request.param, tmp_path) as (config, settings):
        yield Database(request.param, config, settings)


@pytest.fixture
async def driver(db: Database) -> AsyncIterator[Driver]:
    opened = db.open()
    await opened.open()
    yield opened
    await opened.close()


def unmigrated(name: str, directory: Path) -> tuple[Config, dict[str, Any]]:
    require_server(name)
    settings = group_settings(name, directory)
    return resolve({"driver": name, name: settings}, environ={}).config, settings


@pytest.mark.parametrize("name", SQL_DRIVERS)
async def test_a_driver_used_before_migration_says_to_run_migrate(
    name: str, tmp_path: Path
) -> None:
    config, _ = unmigrated(name, tmp_path)
    with pytest.raises(DriverError) as raised:
        await build_driver(config).open()
    assert str(raised.value).startswith(f"{name} open failed: ")
    assert f"run `asynctasq migrate --driver {name}`" in str(raised.value)


async def test_a_table_missing_a_column_says_to_run_migrate(db: Database) -> None:
    await db.rows("ALTER TABLE {q} DROP COLUMN lease_id")
    with pytest.raises(DriverError, match=f"asynctasq migrate --driver {db.name}"):
        await db.open().open()


@pytest.mark.parametrize("name", SQL_DRIVERS)
async def test_concurrent_migrations_create_each_object_once(name: str, tmp_path: Path) -> None:
    config, settings = unmigrated(name, tmp_path)
    try:
        first, second = await asyncio.gather(migrate(config, name), migrate(config, name))
        third = await migrate(config, name)
    finally:
        await drop(name, settings)
    created = [line.removeprefix("created ") for line in first + second if "created " in line]
    assert sorted(created) == sorted(line.removesuffix(" already exists") for line in third)
    assert all(line.endswith(" already exists") for line in third)
    assert f"table {settings['queue_table']} already exists" in third


async def test_a_schema_migrated_before_the_monitoring_tables_gets_them_on_the_next_migrate(
    db: Database,
) -> None:
    queue = db.settings["queue_table"]
    workers, completed = side_tables(queue).values()
    await db.rows("DROP TABLE {q}_workers")  # as the previous version migrated it
    await db.rows("DROP TABLE {q}_completed")
    with pytest.raises(DriverError) as raised:
        await db.open().open()
    assert f"the schema is missing table {workers}, table {completed}" in str(raised.value)
    assert f"run `asynctasq migrate --driver {db.name}`" in str(raised.value)

    lines = await migrate(db.config, db.name)
    assert f"table {queue} already exists" in lines
    assert [line for line in lines if line.startswith("created ")] == [
        f"created table {workers}",
        f"created table {completed}",
        *([f"created index {queue}_completed_q"] if db.name != "mysql" else []),
    ]
    opened = db.open()
    await opened.open()
    try:
        assert isinstance(opened, WorkerRegistry)
        assert await opened.live_workers() == []
    finally:
        await opened.close()


async def test_heartbeats_and_completed_records_live_in_tables_named_after_the_queue_table(
    db: Database, driver: Driver
) -> None:
    assert isinstance(driver, WorkerRegistry)
    assert isinstance(driver, CompletedStore)
    info = WorkerInfo("host-1-7-abc", "host-1", 7, ("a", "b"), 4, db.name, 1_700_000_000.25)
    await driver.record_heartbeat(info, ttl_seconds=30)
    await driver.record_heartbeat(attrs.evolve(info, processed=5), ttl_seconds=30)
    record = CompletedTask("a", "t-1", "m:f", 1, info.worker_id, 1.5, 2.0, 2.25, 250.0)
    await driver.keep_completed([record])
    assert await db.rows("SELECT worker_id, queues, processed FROM {q}_workers") == [
        ("host-1-7-abc", '["a", "b"]', 5)
    ]
    assert await db.rows(
        "SELECT queue_name, task_id, task_name, duration_ms FROM {q}_completed"
    ) == [("a", "t-1", "m:f", 250.0)]
    assert await driver.completed_tasks("a") == [record]
    await driver.remove_worker(info.worker_id)
    assert await db.rows("SELECT worker_id FROM {q}_workers") == []


async def test_a_large_payload_round_trips_byte_for_byte(db: Database, driver: Driver) -> None:
    body = os.urandom(4 * 1024 * 1024)  # far above 64 KiB (BYTEA / LONGBLOB / BLOB)
    await driver.enqueue(Outgoing("q", body))
    [got] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    assert got.body == body
    await driver.ack([got])


async def test_a_message_above_the_database_limit_is_refused_before_it_is_sent(
    driver: Driver,
) -> None:
    limit = driver.max_message_bytes
    assert limit is not None
    assert limit >= 4 * 1024 * 1024
    if limit > 64 * 1024 * 1024:
        pytest.skip(f"{driver.name} accepts {limit} bytes; too large to build in a test")
    with pytest.raises(MessageTooLargeError, match=f"at most {limit} bytes"):
        await driver.enqueue(Outgoing("q", b"x" * (limit + 1)))
    assert await driver.sizes("q") == QueueSizes(0, 0, 0, 0)


async def test_a_row_moves_through_the_shared_status_vocabulary(
    db: Database, driver: Driver
) -> None:
    await driver.enqueue(Outgoing("q", b"body", visibility_timeout_seconds=30, task_id="t-1"))
    assert await db.rows("SELECT status, lease_id, current_attempt, task_id FROM {q}") == [
        ("pending", None, 0, "t-1")
    ]
    [held] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    [(status, lease, attempt, locked)] = await db.rows(
        "SELECT status, lease_id, current_attempt, locked_until FROM {q}"
    )
    assert (status, lease, attempt) == ("leased", held.receipt[1], 1)
    assert locked is not None
    await driver.release([held])
    assert await db.rows("SELECT status, lease_id, current_attempt FROM {q}") == [
        ("pending", None, 0)
    ]
    [held] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    entry = DeadLetterEntry("q", b"body", "t-1", "m:f", "ValueError", "boom", 3, 1700000000.5)
    await driver.dead_letter(held, entry)
    assert await db.rows("SELECT id FROM {q}") == []
    [dead] = await db.rows(
        "SELECT queue_name, task_id, task_name, payload, error_type, error_message, attempts, "
        "visibility_timeout_seconds FROM {d}"
    )
    assert dead == ("q", "t-1", "m:f", b"body", "ValueError", "boom", 3, 30.0)
    assert await driver.dead_letters("q") == [entry]  # failed_at kept to the microsecond


@pytest.mark.parametrize("name", SQL_DRIVERS)
async def test_completed_rows_are_kept_with_status_and_timestamps_when_configured(
    name: str, tmp_path: Path
) -> None:
    keep = {"repository": {"keep_completed_tasks": True}}
    async with migrated(name, tmp_path, keep) as (config, settings):
        db = Database(name, config, settings)
        opened = db.open()
        await opened.open()
        try:
            await opened.enqueue_many([Outgoing("q", b"a"), Outgoing("q", b"b")])
            await opened.ack(await opened.dequeue(["q"], limit=5, wait_seconds=0))
            assert await opened.sizes("q") == QueueSizes(0, 0, 0, 0)
        finally:
            await opened.close()
        rows = await db.rows(
            "SELECT payload, status, lease_id, created_at, updated_at, completed_at "
            "FROM {q} ORDER BY id"
        )
    assert [row[:3] for row in rows] == [(b"a", "completed", None), (b"b", "completed", None)]
    assert all(None not in row[3:] for row in rows)


async def test_due_times_and_leases_follow_the_database_clock_not_the_client(
    db: Database, driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.name == "sqlite":
        pytest.skip("SQLite has no server: its clock is this machine's")
    skewed = SimpleNamespace(time=lambda: time.time() + 3600, monotonic=time.monotonic)
    monkeypatch.setattr(sql, "time", skewed)  # the client is an hour ahead
    await driver.enqueue(Outgoing("q", b"later", delay_seconds=30))
    await driver.enqueue(Outgoing("q", b"now", visibility_timeout_seconds=0.5))
    assert await driver.sizes("q") == QueueSizes(1, 1, 0, 0)
    [held] = await driver.dequeue(["q"], limit=5, wait_seconds=0)
    assert held.body == b"now"
    await driver.maintain(["q"])
    assert (await driver.sizes("q")).in_flight == 1  # the lease has not expired yet
    with anyio.fail_after(10):
        while (await driver.sizes("q")).in_flight:
            await asyncio.sleep(0.1)
            await driver.maintain(["q"])
    assert await driver.sizes("q") == QueueSizes(1, 1, 0, 0)


async def test_an_idle_dequeue_wakes_when_another_process_enqueues(
    db: Database, driver: Driver
) -> None:
    other = db.open()
    await other.open()
    try:
        waiting = asyncio.create_task(driver.dequeue(["q"], limit=5, wait_seconds=20))
        await asyncio.sleep(1.2)  # long enough for a poller to reach its longest interval
        assert not waiting.done()
        began = time.monotonic()
        await other.enqueue(Outgoing("q", b"wake"))
        with anyio.fail_after(5):
            [got] = await waiting
        latency = time.monotonic() - began
    finally:
        await other.close()
    assert got.body == b"wake"
    assert latency < 1.5  # a poll waits at most 0.5 s; a notification arrives at once
    listening = not driver._wakeup.polling  # type: ignore[attr-defined]  # white box
    assert listening == (db.name == "postgres")  # LISTEN/NOTIFY only on PostgreSQL
    await driver.ack([got])


async def test_postgres_waiters_poll_while_the_listening_connection_is_gone(
    tmp_path: Path,
) -> None:
    async with migrated("postgres", tmp_path) as (config, settings):
        db = Database("postgres", config, settings)
        opened: Any = db.open()
        await opened.open()
        try:
            assert await opened.dequeue(["q"], limit=1, wait_seconds=0.05) == []
            listener = opened._db._listener  # white box: the dedicated LISTEN connection
            await db.rows(f"SELECT pg_terminate_backend({listener.get_server_pid()})")
            await asyncio.sleep(0.2)
            waiting = asyncio.create_task(opened.dequeue(["q"], limit=1, wait_seconds=0))
            assert await waiting == []
            other = db.open()
            await other.open()
            await other.enqueue(Outgoing("q", b"still delivered"))
            await other.close()
            with anyio.fail_after(5):
                [got] = await opened.dequeue(["q"], limit=1, wait_seconds=5)
            assert got.body == b"still delivered"
            with anyio.fail_after(5):
                await opened.dequeue(["q"], limit=1, wait_seconds=0.05)
            assert opened._db._listener is not listener  # reopened by the next wait
            assert not opened._db._listener.is_closed()
        finally:
            await opened.close()


async def test_consumers_with_separate_pools_never_claim_the_same_row(db: Database) -> None:
    drivers = [db.open() for _ in range(2)]
    for opened in drivers:
        await opened.open()
    sent = [b"m%d" % i for i in range(1000)]
    await drivers[0].enqueue_many([Outgoing("q", body) for body in sent])
    seen: Counter[bytes] = Counter()

    async def consume(opened: Driver) -> None:
        while sum(seen.values()) < len(sent):
            got = await opened.dequeue(["q"], limit=25, wait_seconds=0.05)
            seen.update(d.body for d in got)
            if got:
                await opened.ack(got)

    try:
        with anyio.fail_after(60):
            await asyncio.gather(*(consume(d) for d in drivers for _ in range(4)))
        assert seen == Counter(sent)
        assert await drivers[0].sizes("q") == QueueSizes(0, 0, 0, 0)
    finally:
        for opened in drivers:
            await opened.close()


async def test_a_schema_qualified_postgres_table_works(tmp_path: Path) -> None:
    require_server("postgres")
    stem = group_settings("postgres", tmp_path)["queue_table"].removesuffix("_q")
    extra = {"queue_table": f"public.{stem}_q", "dead_letter_table": f"public.{stem}_d"}
    async with migrated("postgres", tmp_path, **extra) as (config, settings):
        opened = build_driver(config)
        await opened.open()
        try:
            await opened.enqueue(Outgoing("q", b"qualified"))
            [got] = await opened.dequeue(["q"], limit=1, wait_seconds=0)
            assert got.body == b"qualified"
            await opened.ack([got])
            assert isinstance(opened, WorkerRegistry)
            await opened.record_heartbeat(
                WorkerInfo("w-1", "h", 1, ("q",), 1, "postgres", 1.0), ttl_seconds=30
            )
            assert [w.worker_id for w in await opened.live_workers()] == ["w-1"]
        finally:
            await opened.close()
        assert settings["queue_table"].startswith("public.")


async def test_a_mysql_deadlock_is_rolled_back_and_run_again(tmp_path: Path) -> None:
    # C34: another transaction forms a lock cycle with one of the driver's transactions;
    # InnoDB rolls back the smaller one (the driver's) with 1213 and the driver runs it again.
    async with migrated("mysql", tmp_path) as (config, settings):
        opened: Any = build_driver(config)
        await opened.open()
        other = await aiomysql.connect(**client_params(connect_params(settings["dsn"])))
        table = f"`{settings['queue_table']}`"
        try:
            await opened.enqueue_many([Outgoing("q", b"%d" % i) for i in range(52)])
            held = await opened.dequeue(["q"], limit=52, wait_seconds=0)
            one, two = ({"id": d.receipt[0], "lease": d.receipt[1]} for d in held[:2])
            first_lock = asyncio.Event()
            runs: list[int] = []

            async def body(session: Any) -> None:  # locks row one, then row two
                runs.append(1)
                await session.execute_many("extend", [one])
                first_lock.set()
                await session.execute_many("extend", [two])

            async with other.cursor() as cursor:
                await cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                await other.begin()  # changes 50 rows: the larger transaction of the two
                touch = f"UPDATE {table} SET updated_at = NOW(6) WHERE id > {two['id']}"  # noqa: S608
                await cursor.execute(touch)
                await cursor.execute(f"SELECT id FROM {table} WHERE id = {two['id']} FOR UPDATE")  # noqa: S608
                running = asyncio.create_task(opened._db.transaction(body))  # white box
                with anyio.fail_after(10):
                    await first_lock.wait()
                await asyncio.sleep(0.3)  # the body now waits for row two
                await cursor.execute(f"SELECT id FROM {table} WHERE id = {one['id']} FOR UPDATE")  # noqa: S608
                await other.commit()
            with anyio.fail_after(20):
                await running
            assert len(runs) == 2  # rolled back once, run again
            assert opened._db.lock_retries == 1
        finally:
            other.close()
            await opened.close()


async def test_the_queue_catalog_lists_queues_with_rows(driver: Driver) -> None:
    assert isinstance(driver, QueueCatalog)
    assert await driver.queue_names() == []
    await driver.enqueue_many([Outgoing("b", b"1"), Outgoing("a", b"2", delay_seconds=60)])
    [held] = await driver.dequeue(["b"], limit=1, wait_seconds=0)
    await driver.enqueue(Outgoing("c", b"3"))
    [doomed] = await driver.dequeue(["c"], limit=1, wait_seconds=0)
    await driver.dead_letter(doomed, DeadLetterEntry("c", b"3", "t", "n", "E", "m", 1, 1.0))
    assert await driver.queue_names() == ["a", "b", "c"]
    await driver.ack([held])
    assert await driver.queue_names() == ["a", "c"]
