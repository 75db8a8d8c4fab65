"""The ``broker`` fixture: one opened driver per available broker, with unique queue names.

Every contract test runs once per entry of ``OPENERS``. A new driver adds one line there and
an opener that yields a :class:`~tests.integration.drivers.brokers.Broker` and removes what
its queues left behind.

The RabbitMQ-only tests share ``world`` (a
:class:`~tests.integration.drivers.rabbitmq_world.RabbitMQWorld` on the local broker, its
driver defaults from ``world_defaults``, which a test module may override) and ``raw`` (a
plain aio-pika channel on the same broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from redis.asyncio import Redis

from asynctasq.config.records import Config, RabbitMQConfig, RedisConfig
from asynctasq.drivers import build_driver
from asynctasq.drivers.rabbitmq import RabbitMQDriver
from tests.integration.drivers.brokers import Broker
from tests.integration.drivers.rabbitmq_world import RabbitMQWorld
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


@pytest.fixture
def world_defaults() -> dict[str, Any]:
    """Return the keywords every ``world.driver()`` starts from: none (the driver's defaults)."""
    return {}


@pytest.fixture
async def world(rabbitmq_url: str, world_defaults: dict[str, Any]) -> AsyncIterator[RabbitMQWorld]:
    """Yield a RabbitMQ world on the local broker; close its drivers and delete its topology."""
    made = RabbitMQWorld(rabbitmq_url, defaults=world_defaults)
    yield made
    await made.close()


@pytest.fixture
async def raw(rabbitmq_url: str) -> AsyncIterator[AbstractChannel]:
    """Yield a channel of a plain aio-pika connection to the local RabbitMQ (not a driver)."""
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()
