"""The ``broker`` fixture: one opened driver per available broker, with unique queue names.

Every contract test runs once per entry of ``OPENERS``. A new driver adds one line there and
an opener that yields a :class:`~tests.integration.drivers.brokers.Broker` and removes what
its queues left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from asynctasq.config.records import Config, RabbitMQConfig, RedisConfig
from asynctasq.drivers import build_driver
from asynctasq.drivers.rabbitmq import RabbitMQDriver
from tests.integration.drivers.brokers import Broker
from tests.integration.drivers.sql_openers import open_mysql, open_postgres, open_sqlite
from tests.integration.rabbitmq_admin import close_connections, delete_topology, require_rabbitmqctl
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
    broker = Broker("sqs", driver, released_to_front=False)
    try:
        yield broker
    finally:
        await driver.close()
        delete_queues(endpoint, broker.queues)


@contextlib.asynccontextmanager
async def open_rabbitmq(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    url: str = request.getfixturevalue("rabbitmq_url")
    exchange = f"t-{uuid.uuid4().hex[:16]}"
    settings = RabbitMQConfig(url=url, exchange_name=exchange, prefetch_count=100)
    driver = build_driver(Config(driver="rabbitmq", rabbitmq=settings))
    assert isinstance(driver, RabbitMQDriver)
    name = driver.connection_name

    async def lose_leases() -> None:
        require_rabbitmqctl()
        assert await asyncio.to_thread(close_connections, name) == 1

    await driver.open()
    broker = Broker("rabbitmq", driver, lose_leases=lose_leases)
    try:
        yield broker
    finally:
        await driver.close()
        await delete_topology(url, exchange, broker.queues)


OPENERS: dict[
    str, Callable[[pytest.FixtureRequest], contextlib.AbstractAsyncContextManager[Broker]]
] = {
    "memory": open_memory,
    "rabbitmq": open_rabbitmq,
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
