"""Redis-only behaviour: key layout, server clock, db selection, pool limits, reconnection."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from redis.asyncio import Redis

from asynctasq.config.records import RedisConfig
from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing
from asynctasq.drivers.redis import RedisDriver
from asynctasq.errors import DriverError
from tests.integration.conftest import reachable

pytestmark = pytest.mark.anyio


def unique() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


def keys_of(queue: str) -> list[str]:
    return [f"queue:{queue}{suffix}" for suffix in ("", ":processing", ":delayed", ":dead")]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
async def queue(raw: Redis) -> AsyncIterator[str]:
    name = unique()
    yield name
    await raw.delete(*keys_of(name))


@pytest.fixture
async def driver(redis_url: str) -> AsyncIterator[RedisDriver]:
    opened = RedisDriver(RedisConfig(url=redis_url))
    await opened.open()
    yield opened
    await opened.close()


async def server_ms(raw: Redis) -> float:
    seconds, micros = await raw.time()
    return seconds * 1000 + micros / 1000


async def test_each_state_lives_in_the_documented_key(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    await driver.enqueue_many(
        [Outgoing(queue, b"a"), Outgoing(queue, b"b"), Outgoing(queue, b"c", delay_seconds=60)]
    )
    assert await raw.type(f"queue:{queue}") == b"list"
    assert await raw.type(f"queue:{queue}:delayed") == b"zset"
    dead, _ = await driver.dequeue([queue], limit=2, wait_seconds=0)
    assert await raw.type(f"queue:{queue}:processing") == b"zset"
    entry = DeadLetterEntry(queue, dead.body, "t", "n", "E", "m", 1, 1.0)
    await driver.dead_letter(dead, entry)
    assert await raw.type(f"queue:{queue}:dead") == b"list"
    assert await raw.zcard(f"queue:{queue}:processing") == 1


async def test_due_times_and_lease_deadlines_come_from_the_server_clock(
    driver: RedisDriver, raw: Redis, queue: str
) -> None:
    before = await server_ms(raw)
    await driver.enqueue(Outgoing(queue, b"later", delay_seconds=30))
    await driver.enqueue(Outgoing(queue, b"now", visibility_timeout_seconds=20))
    await driver.dequeue([queue], limit=1, wait_seconds=0)
    after = await server_ms(raw)
    [(_, due)] = await raw.zrange(f"queue:{queue}:delayed", 0, -1, withscores=True)
    [(_, deadline)] = await raw.zrange(f"queue:{queue}:processing", 0, -1, withscores=True)
    assert before + 30_000 <= due <= after + 30_001
    assert before + 20_000 - 1 <= deadline <= after + 20_000


async def test_keys_land_in_the_configured_db(redis_url: str, queue: str) -> None:
    # C31: db from the setting, checked with a second client on that db.
    driver = RedisDriver(RedisConfig(url=redis_url, db=7))
    try:
        await driver.enqueue(Outgoing(queue, b"x"))
        async with (
            Redis.from_url(redis_url, db=7) as on_seven,
            Redis.from_url(redis_url) as on_zero,
        ):
            assert await on_seven.llen(f"queue:{queue}") == 1
            assert await on_zero.exists(f"queue:{queue}") == 0
            await on_seven.delete(*keys_of(queue))
    finally:
        await driver.close()


async def test_a_db_in_the_url_is_used(redis_url: str, queue: str) -> None:
    driver = RedisDriver(RedisConfig(url=f"{redis_url}/6"))
    try:
        await driver.enqueue(Outgoing(queue, b"x"))
        async with Redis.from_url(redis_url, db=6) as on_six:
            assert await on_six.llen(f"queue:{queue}") == 1
            await on_six.delete(*keys_of(queue))
    finally:
        await driver.close()


async def client_count(raw: Redis, name: str) -> int:
    clients = await raw.client_list()
    return sum(1 for client in clients if client.get("name") == name)


async def test_a_full_pool_makes_calls_wait_instead_of_failing(
    redis_url: str, raw: Redis, queue: str
) -> None:
    # C35: max_connections=2 and 100 concurrent calls: all succeed, at most 2 connections.
    name = unique()
    driver = RedisDriver(RedisConfig(url=redis_url, max_connections=2), client_name=name)
    try:
        await asyncio.gather(*(driver.enqueue(Outgoing(queue, b"%d" % i)) for i in range(100)))
        sizes = await asyncio.gather(*(driver.sizes(queue) for _ in range(50)))
        assert {s.ready for s in sizes} == {100}
        assert await client_count(raw, name) <= 2
    finally:
        await driver.close()


async def test_open_warms_up_the_configured_number_of_connections(
    redis_url: str, raw: Redis
) -> None:
    name = unique()
    driver = RedisDriver(RedisConfig(url=redis_url, warmup_connections=3), client_name=name)
    try:
        await driver.open()
        await driver.open()
        assert await client_count(raw, name) == 3
    finally:
        await driver.close()
        await driver.close()
    assert await client_count(raw, name) == 0


async def test_an_unreachable_server_raises_driver_error_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://user:s3cret-pw@127.0.0.1:{port}"
    driver = RedisDriver(RedisConfig(url=url, password="other-s3cret"), retries=0)
    with pytest.raises(DriverError) as caught:
        await driver.open()
    assert caught.value.broker == "redis"
    assert caught.value.operation == "open"
    assert "s3cret" not in str(caught.value)
    with pytest.raises(DriverError, match="redis enqueue failed"):
        await driver.enqueue(Outgoing("q", b"x"))
    await driver.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OwnRedis:
    """A redis-server this test starts and stops itself (never the shared one)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", self.port, 0.2):
            assert time.monotonic() < deadline, "own redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(redis_url: str) -> Iterator[OwnRedis]:
    del redis_url  # the same binary; skipped with it
    server = OwnRedis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_the_driver_works_again_after_redis_restarts(own_redis: OwnRedis) -> None:
    url = f"redis://127.0.0.1:{own_redis.port}"
    driver = RedisDriver(RedisConfig(url=url), retries=1, backoff_cap_seconds=0.1)
    try:
        await driver.open()
        await driver.enqueue(Outgoing("q", b"before"))
        waiting = asyncio.create_task(driver.dequeue(["idle"], limit=1, wait_seconds=30))
        await asyncio.sleep(0.2)  # bounded: the dequeue is blocked in BLMOVE
        own_redis.stop()
        with anyio.fail_after(10), pytest.raises(DriverError, match="dequeue"):
            await waiting
        with pytest.raises(DriverError, match="enqueue"):
            await driver.enqueue(Outgoing("q", b"during"))
        own_redis.start()
        waiting = asyncio.create_task(driver.dequeue(["idle"], limit=1, wait_seconds=10))
        await driver.enqueue(Outgoing("idle", b"after"))
        with anyio.fail_after(10):
            [got] = await waiting
        assert got.body == b"after"
        await driver.ack([got])
    finally:
        await driver.close()
