"""Contract-suite openers for the SQL drivers: each test on its own migrated tables."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from asynctasq.drivers import build_driver
from tests.integration.drivers.brokers import Broker
from tests.integration.sql_servers import migrated


def sql_opener(
    driver: str,
) -> Callable[[pytest.FixtureRequest], contextlib.AbstractAsyncContextManager[Broker]]:
    """Return the opener of ``driver``'s contract broker (tables dropped afterwards)."""

    @contextlib.asynccontextmanager
    async def open_sql(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
        directory: Path = request.getfixturevalue("tmp_path")
        async with migrated(driver, directory) as (config, _):
            opened = build_driver(config)
            await opened.open()
            try:
                yield Broker(driver, opened)
            finally:
                await opened.close()

    return open_sql


open_postgres = sql_opener("postgres")
open_mysql = sql_opener("mysql")
open_sqlite = sql_opener("sqlite")
