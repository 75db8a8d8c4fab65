"""Where the SQL drivers' tables live: schema-qualified names, clashing names, SQLite files.

Run the way a user runs them: ``asynctasq migrate`` in-process (its own event loop), then
a real worker. Each test gets its own PostgreSQL schema, MySQL database or SQLite file.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomysql
import pytest

from asynctasq import configured, run_worker, task
from asynctasq.cli.main import main
from asynctasq.config.resolve import resolve
from asynctasq.drivers import build_driver
from asynctasq.drivers.mysql import client_params, connect_params
from asynctasq.errors import DriverError
from tests.integration.sql_servers import (
    MYSQL_DSN,
    PG_DSN,
    SQL_DRIVERS,
    group_settings,
    query,
    require_server,
)

ran: list[int] = []


@task(max_attempts=1)
async def note(n: int) -> None:
    ran.append(n)


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """Run ``asynctasq *argv`` with no ``.env`` and no ``ASYNCTASQ_*`` variables."""
    code = main([*argv, "--env-file", str(tmp_path / "none.env")])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("ASYNCTASQ_")]:
        monkeypatch.delenv(key)
    ran.clear()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped with everything in it afterwards."""
    require_server("postgres")
    name = f"s{uuid.uuid4().hex[:12]}"
    asyncio.run(query("postgres", {"dsn": PG_DSN}, f'CREATE SCHEMA "{name}"'))
    yield name
    asyncio.run(query("postgres", {"dsn": PG_DSN}, f'DROP SCHEMA "{name}" CASCADE'))


async def _mysql(sql: str) -> list[tuple[Any, ...]]:
    connection = await aiomysql.connect(**client_params(connect_params(MYSQL_DSN)), autocommit=True)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(sql)
            return [tuple(row) for row in await cursor.fetchall()]
    finally:
        connection.close()


@pytest.fixture
def mysql_database() -> Iterator[str]:
    """A fresh MySQL database (a schema to MySQL), dropped afterwards."""
    require_server("mysql")
    name = f"s{uuid.uuid4().hex[:12]}"
    asyncio.run(_mysql(f"CREATE DATABASE `{name}`"))
    yield name
    asyncio.run(_mysql(f"DROP DATABASE `{name}`"))


def _run_one_task(settings: dict[str, Any]) -> int:
    async def go() -> int:
        async with configured(settings) as handle:
            await note(7).on_queue("q").dispatch()
            stats = await run_worker(
                handle, tasks=[note], queues=["q"], max_tasks=1, handle_signals=False
            )
            return stats.succeeded

    return asyncio.run(go())


def test_postgres_tables_in_a_schema_of_their_own_are_migrated_once_and_run_tasks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_schema: str
) -> None:
    queue, dead = f"{pg_schema}.q", f"{pg_schema}.dlq"
    flags = ("--driver", "postgres", "--postgres-dsn", PG_DSN)
    tables = ("--postgres-queue-table", queue, "--postgres-dead-letter-table", dead)
    code, out, err = cli(capsys, tmp_path, "migrate", *flags, *tables)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        f"postgres: created table {pg_schema}.q",
        f"postgres: created index {pg_schema}.q_ready",
        f"postgres: created index {pg_schema}.q_leased",
        f"postgres: created table {pg_schema}.dlq",
        f"postgres: created index {pg_schema}.dlq_queue",
        f"postgres: created function {pg_schema}.q_notify",
        f"postgres: created trigger {pg_schema}.q_notify",
        f"postgres: created table {pg_schema}.q_workers",
        f"postgres: created table {pg_schema}.q_completed",
        f"postgres: created index {pg_schema}.q_completed_q",
        "postgres: done; created 10 of 10 schema objects",
    ]
    code, out, _ = cli(capsys, tmp_path, "migrate", *flags, *tables)
    assert code == 0
    assert out.splitlines()[-1] == "postgres: nothing to do; the schema is up to date"
    relations = asyncio.run(
        query(
            "postgres",
            {"dsn": PG_DSN},
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relname IN ('q', 'dlq', 'q_workers', "
            "'q_completed', 'q_ready', 'q_leased', 'dlq_queue', 'q_completed_q') "
            "ORDER BY c.relname",
        )
    )
    assert relations == [
        (pg_schema, name)
        for name in sorted(
            (
                "q",
                "dlq",
                "q_workers",
                "q_completed",
                "q_ready",
                "q_leased",
                "dlq_queue",
                "q_completed_q",
            )
        )
    ]

    settings = {
        "driver": "postgres",
        "postgres": {"dsn": PG_DSN, "queue_table": queue, "dead_letter_table": dead},
        "repository": {"keep_completed_tasks": True},
    }
    assert _run_one_task(settings) == 1
    assert ran == [7]
    kept = asyncio.run(
        query("postgres", {"dsn": PG_DSN}, f'SELECT task_name FROM "{pg_schema}".q_completed')  # noqa: S608
    )
    assert kept == [(note.name,)]


def test_a_missing_postgres_schema_is_the_error_migrate_reports(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    require_server("postgres")
    missing = f"nosuch_{uuid.uuid4().hex[:8]}"
    code, _, err = cli(
        capsys, tmp_path, "migrate", "--driver", "postgres", "--postgres-dsn", PG_DSN,
        "--postgres-queue-table", f"{missing}.x",
    )  # fmt: skip
    assert code == 1
    assert f'InvalidSchemaNameError: schema "{missing}" does not exist' in err
    assert "current transaction is aborted" not in err
    assert "asynctasq migrate --driver" not in err  # migrating again would not help


def test_mysql_tables_in_another_database_are_migrated_once_and_run_tasks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mysql_database: str
) -> None:
    queue, dead = f"{mysql_database}.q", f"{mysql_database}.dlq"
    flags = ("--driver", "mysql", "--mysql-dsn", MYSQL_DSN)
    tables = ("--mysql-queue-table", queue, "--mysql-dead-letter-table", dead)
    code, out, err = cli(capsys, tmp_path, "migrate", *flags, *tables)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        f"mysql: created table {mysql_database}.q",
        f"mysql: created table {mysql_database}.dlq",
        f"mysql: created table {mysql_database}.q_workers",
        f"mysql: created table {mysql_database}.q_completed",
        "mysql: done; created 4 of 4 schema objects",
    ]
    code, out, _ = cli(capsys, tmp_path, "migrate", *flags, *tables)
    assert out.splitlines()[-1] == "mysql: nothing to do; the schema is up to date"
    settings = {
        "driver": "mysql",
        "mysql": {"dsn": MYSQL_DSN, "queue_table": queue, "dead_letter_table": dead},
    }
    assert _run_one_task(settings) == 1
    assert ran == [7]


@pytest.mark.parametrize("name", SQL_DRIVERS)
def test_one_table_for_queue_and_dead_letters_is_refused_before_anything_is_created(
    name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    require_server(name)
    settings = group_settings(name, tmp_path)
    table = settings["queue_table"]
    flags = [f"--{name}-{key.replace('_', '-')}" for key in ("queue_table", "dead_letter_table")]
    where = (
        ["--sqlite-path", settings["path"]]
        if name == "sqlite"
        else [f"--{name}-dsn", settings["dsn"]]
    )
    code, out, err = cli(
        capsys, tmp_path, "migrate", "--driver", name, *where, flags[0], table, flags[1], table
    )
    assert (code, out) == (2, "")
    assert f"{name}.dead_letter_table = {table!r} (from flag {flags[1]})" in err
    assert f"{name}.queue_table" in err
    if name == "sqlite":
        assert not Path(settings["path"]).exists()
    else:
        tables = f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'"  # noqa: S608
        assert asyncio.run(query(name, settings, tables)) == [(0,)]


def test_sqlite_migrate_says_why_the_file_cannot_be_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "no-such-directory" / "q.sqlite3"
    code, _, err = cli(
        capsys, tmp_path, "migrate", "--driver", "sqlite", "--sqlite-path", str(path)
    )
    assert code == 1
    assert str(path) in err
    assert "No such file or directory" in err
    assert "asynctasq migrate" not in err.partition("error:")[2]


def test_a_sqlite_file_that_does_not_exist_says_to_migrate_and_names_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.sqlite3"
    config = resolve({"driver": "sqlite", "sqlite": {"path": str(path)}}, environ={}).config
    driver = build_driver(config)
    with pytest.raises(DriverError) as raised:
        asyncio.run(driver.open())
    assert str(path) in str(raised.value)
    assert "does not exist" in str(raised.value)
    assert "run `asynctasq migrate --driver sqlite`" in str(raised.value)
    assert not path.exists()


def test_an_in_memory_sqlite_database_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(
        capsys, tmp_path, "migrate", "--driver", "sqlite", "--sqlite-path", ":memory:"
    )
    assert (code, out) == (2, "")
    assert "sqlite.path = ':memory:' (from flag --sqlite-path)" in err
    assert not list(tmp_path.iterdir())  # no file named ':memory:' either
