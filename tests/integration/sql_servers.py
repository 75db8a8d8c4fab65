"""PostgreSQL, MySQL and SQLite for integration tests: per-test tables, migrated and dropped.

Every test gets its own queue and dead-letter tables (``t<hex>_q``, ``t<hex>_d``) so tests
run in parallel (xdist) without sharing rows; SQLite gets its own file under the test's
``tmp_path``. An unreachable server skips the test locally and fails it under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiomysql
import asyncpg

from asynctasq.config.records import Config
from asynctasq.config.resolve import resolve
from asynctasq.drivers import build_driver
from asynctasq.drivers.mysql import client_params, connect_params
from asynctasq.drivers.sql_connector import side_tables
from tests.integration.conftest import require

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306
MYSQL_DSN = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/test"

SQL_DRIVERS = ("postgres", "mysql", "sqlite")


def require_server(driver: str) -> None:
    """Skip (fail under CI) unless ``driver``'s server is listening; SQLite needs none."""
    if driver == "postgres":
        require("PostgreSQL", PG_HOST, PG_PORT)
    elif driver == "mysql":
        require("MySQL", MYSQL_HOST, MYSQL_PORT)


def group_settings(driver: str, directory: Path, **extra: Any) -> dict[str, Any]:
    """Return the driver group's settings with fresh table names (and file, for SQLite)."""
    stem = f"t{uuid.uuid4().hex[:12]}"
    found: dict[str, Any] = {"queue_table": f"{stem}_q", "dead_letter_table": f"{stem}_d"}
    if driver == "postgres":
        found.update(dsn=PG_DSN, min_pool_size=1)
    elif driver == "mysql":
        found.update(dsn=MYSQL_DSN, min_pool_size=1)
    else:
        found.update(path=str(directory / f"{stem}.sqlite3"))
    found.update(extra)
    return found


def environment(driver: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """Return ``ASYNCTASQ_*`` variables selecting ``driver`` with ``settings``."""
    env = {"ASYNCTASQ_DRIVER": driver}
    for key, value in settings.items():
        env[f"ASYNCTASQ_{driver.upper()}_{key.upper()}"] = str(value)
    return env


async def migrate(config: Config, driver: str) -> list[str]:
    """Run the driver's migration, as ``asynctasq migrate`` does; return its lines."""
    migrator: Any = build_driver(config, driver)
    lines: list[str] = await migrator.migrate()
    return lines


async def drop(driver: str, settings: Mapping[str, Any]) -> None:
    """Drop the tables (and PostgreSQL's notify function) made for ``settings``."""
    queue, dead = settings["queue_table"], settings["dead_letter_table"]
    tables = (queue, dead, *side_tables(queue).values())
    if driver == "postgres":
        quoted = [".".join(f'"{part}"' for part in name.split(".")) for name in tables]
        function = quoted[0][:-1] + '_notify"'
        connection = await asyncpg.connect(settings["dsn"])
        try:
            await connection.execute(
                f"DROP TABLE IF EXISTS {', '.join(quoted)}; DROP FUNCTION IF EXISTS {function}()"
            )
        finally:
            await connection.close()
    elif driver == "mysql":
        connection = await aiomysql.connect(**client_params(connect_params(settings["dsn"])))
        try:
            async with connection.cursor() as cursor:
                names = ", ".join(f"`{name}`" for name in tables)
                await cursor.execute(f"DROP TABLE IF EXISTS {names}")
        finally:
            connection.close()
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(settings["path"] + suffix).unlink(missing_ok=True)  # noqa: ASYNC240 - tiny


@contextlib.asynccontextmanager
async def migrated(
    driver: str, directory: Path, overrides: Mapping[str, Any] | None = None, **extra: Any
) -> AsyncIterator[tuple[Config, dict[str, Any]]]:
    """Yield a config for ``driver`` on fresh, migrated tables, and the group's settings.

    Args:
        driver: ``"postgres"``, ``"mysql"`` or ``"sqlite"``.
        directory: where a SQLite file goes (the test's ``tmp_path``).
        overrides: more top-level configuration, e.g. ``{"repository": {...}}``.
        extra: more settings of the driver's group.

    """
    require_server(driver)
    settings = group_settings(driver, directory, **extra)
    config = resolve({"driver": driver, driver: settings, **(overrides or {})}, environ={}).config
    await migrate(config, driver)
    try:
        yield config, settings
    finally:
        await drop(driver, settings)


async def query(driver: str, settings: Mapping[str, Any], sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the driver's database with its own client; return the rows."""
    if driver == "postgres":
        connection = await asyncpg.connect(settings["dsn"])
        try:
            return [tuple(row) for row in await connection.fetch(sql)]
        finally:
            await connection.close()
    if driver == "mysql":
        params = client_params(connect_params(settings["dsn"]))
        connection = await aiomysql.connect(**params, autocommit=True)
        try:
            async with connection.cursor() as cursor:
                await cursor.execute(sql)
                return [tuple(row) for row in await cursor.fetchall()]
        finally:
            connection.close()
    with sqlite3.connect(settings["path"], isolation_level=None) as connection:
        return [tuple(row) for row in connection.execute(sql).fetchall()]
