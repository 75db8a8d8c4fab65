"""The brokers a worker test can run against, chosen by the ``broker_name`` fixture.

A test runs on Redis alone unless it is marked ``@on_brokers`` (then once per broker in
:data:`TARGETS`). A :class:`Target` says how worker subprocesses and the test's own handle
reach the broker, how to count a queue's messages from the broker's side, and how to
remove what a queue left behind. Another driver joins with one entry in :data:`TARGETS`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import pytest
import redis
from redis.asyncio import Redis

from tests.integration.rabbitmq_admin import delete_topology, queue_counts, require_rabbitmqctl
from tests.integration.worker.sql_targets import sql_parts
from tests.integration.worker.sqs_target import VOLUME, sqs_parts

Sizes = Callable[[str], Awaitable[dict[str, int]]]
"""``await sizes(queue)`` -> ready, in-flight, delayed and dead counts as the broker sees them."""

MAINTENANCE_SECONDS = 0.5
"""The ``delayed_task_interval`` of the workers and handles of these tests."""

RABBITMQ_PREFETCH = 50
"""``rabbitmq.prefetch_count`` of the test workers: above every concurrency they use, so
their prefetched-but-unstarted messages are exercised too (C18)."""


@attrs.frozen
class Target:
    """One broker as the worker tests see it.

    Attributes:
        name: the driver name.
        variables: ``ASYNCTASQ_*`` environment variables for worker subprocesses.
        settings: the driver's settings group for ``configured(driver=name, name=settings)``.
        sizes: ``await sizes(queue)`` -> ``{"ready", "in_flight", "delayed", "dead"}`` counts,
            as the broker sees them (all consumers).
        cleanup: removes everything queue ``queue`` left on the broker.
        volume: tasks of the volume test (10,000; fewer where the server is a slow stand-in).
    """

    name: str
    variables: Mapping[str, str]
    settings: Mapping[str, Any]
    sizes: Sizes
    cleanup: Callable[[str], None]
    volume: int = 10_000


def redis_target(request: pytest.FixtureRequest) -> Target:
    url: str = request.getfixturevalue("redis_url")

    async def sizes(queue: str) -> dict[str, int]:
        async with Redis.from_url(url) as client:
            return {
                "ready": await client.llen(f"queue:{queue}"),
                "in_flight": await client.zcard(f"queue:{queue}:processing"),
                "delayed": await client.zcard(f"queue:{queue}:delayed"),
                "dead": await client.llen(f"queue:{queue}:dead"),
            }

    def cleanup(queue: str) -> None:
        with redis.Redis.from_url(url) as client:
            suffixes = ("", ":processing", ":delayed", ":dead")
            client.delete(*(f"queue:{queue}{suffix}" for suffix in suffixes))

    variables = {
        "ASYNCTASQ_DRIVER": "redis",
        "ASYNCTASQ_REDIS_URL": url,
        "ASYNCTASQ_REDIS_DELAYED_TASK_INTERVAL": str(MAINTENANCE_SECONDS),
    }
    settings = {"url": url, "delayed_task_interval": MAINTENANCE_SECONDS}
    return Target("redis", variables, settings, sizes, cleanup)


def rabbitmq_target(request: pytest.FixtureRequest) -> Target:
    url: str = request.getfixturevalue("rabbitmq_url")
    require_rabbitmqctl()
    exchange = f"w-{uuid.uuid4().hex[:12]}"

    async def sizes(queue: str) -> dict[str, int]:
        counts = await asyncio.to_thread(queue_counts, queue)
        return {
            "ready": counts[queue][0],
            "in_flight": counts[queue][1],
            "delayed": sum(counts[f"{queue}_delayed"]),
            "dead": sum(counts[f"{queue}_dead"]),
        }

    def cleanup(queue: str) -> None:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own event loop
            pool.submit(asyncio.run, delete_topology(url, exchange, [queue])).result()

    variables = {
        "ASYNCTASQ_DRIVER": "rabbitmq",
        "ASYNCTASQ_RABBITMQ_URL": url,
        "ASYNCTASQ_RABBITMQ_EXCHANGE_NAME": exchange,
        "ASYNCTASQ_RABBITMQ_PREFETCH_COUNT": str(RABBITMQ_PREFETCH),
        "ASYNCTASQ_RABBITMQ_DELAYED_TASK_INTERVAL": str(MAINTENANCE_SECONDS),
    }
    settings = {
        "url": url,
        "exchange_name": exchange,
        "prefetch_count": RABBITMQ_PREFETCH,
        "delayed_task_interval": MAINTENANCE_SECONDS,
    }
    return Target("rabbitmq", variables, settings, sizes, cleanup)


def sql_target(driver: str) -> Callable[[pytest.FixtureRequest], Target]:
    """Return the target factory of an SQL driver (its own migrated tables per test)."""

    def make(request: pytest.FixtureRequest) -> Target:
        return Target(driver, *sql_parts(driver, request))

    return make


def sqs_target(request: pytest.FixtureRequest) -> Target:
    """The SQS target: moto's server (fewer tasks in the volume test, see ``VOLUME``)."""
    return Target("sqs", *sqs_parts(request), volume=VOLUME)


TARGETS: dict[str, Callable[[pytest.FixtureRequest], Target]] = {
    "redis": redis_target,
    "rabbitmq": rabbitmq_target,
    "postgres": sql_target("postgres"),
    "mysql": sql_target("mysql"),
    "sqlite": sql_target("sqlite"),
    "sqs": sqs_target,
}

on_brokers = pytest.mark.parametrize("broker_name", sorted(TARGETS), indirect=True)
"""Run the marked test once per broker in :data:`TARGETS`."""
