"""The ``broker`` fixture: one opened driver per available broker, with unique queue names.

Every contract test runs once per entry of ``OPENERS``. A new driver adds one line there and
an opener that yields a :class:`~tests.integration.drivers.brokers.Broker` and removes what
its queues left behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from asynctasq.config.records import Config, RedisConfig
from asynctasq.drivers import build_driver
from tests.integration.drivers.brokers import Broker
from tests.integration.drivers.sql_openers import open_mysql, open_postgres, open_sqlite
from tests.integration.sqs_server import delete_queues, moto_endpoint, sqs_config


@contextlib.asynccontextmanager
async def open_memory(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    driver = build_driver(Config(driver="memory"))
    await driver.open()
    try:
        yield Broker("memory", driver)
    finally:
        await driver.close()


@contextlib.asynccontextmanager
async def open_redis(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    url: str = request.getfixturevalue("redis_url")
    driver = build_driver(Config(driver="redis", redis=RedisConfig(url=url)))
    await driver.open()
    broker = Broker("redis", driver)
    try:
        yield broker
    finally:
        await driver.close()
        async with Redis.from_url(url) as client:
            for queue in broker.queues:
                suffixes = ("", ":processing", ":delayed", ":dead")
                await client.delete(*(f"queue:{queue}{suffix}" for suffix in suffixes))


@contextlib.asynccontextmanager
async def open_sqs(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    endpoint = moto_endpoint()
    driver = build_driver(Config(driver="sqs", sqs=sqs_config(endpoint)))
    await driver.open()
    broker = Broker("sqs", driver, released_to_front=False, bulk_messages=200)
    try:
        yield broker
    finally:
        await driver.close()
        delete_queues(endpoint, broker.queues)


OPENERS: dict[
    str, Callable[[pytest.FixtureRequest], contextlib.AbstractAsyncContextManager[Broker]]
] = {
    "memory": open_memory,
    "redis": open_redis,
    "sqs": open_sqs,
    "postgres": open_postgres,
    "mysql": open_mysql,
    "sqlite": open_sqlite,
}


@pytest.fixture(params=sorted(OPENERS))
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    async with OPENERS[request.param](request) as opened:
        yield opened
