"""The optional monitoring protocols, run against every driver that implements them.

QueueCatalog, WorkerRegistry, CompletedStore and DeadLetterStore.requeue_dead(rewrite=...).
A driver without one of them is skipped here (the monitoring API says so to its users).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import attrs
import pytest

from asynctasq.drivers.protocol import (
    CompletedStore,
    CompletedTask,
    DeadLetterEntry,
    DeadLetterStore,
    Outgoing,
    QueueCatalog,
    WorkerInfo,
    WorkerRegistry,
)
from tests.integration.drivers.brokers import Broker

pytestmark = pytest.mark.anyio


def needs(broker: Broker, protocol: type) -> None:
    if not isinstance(broker.driver, protocol):
        pytest.skip(f"the {broker.name} driver does not implement {protocol.__name__}")


def worker(worker_id: str, **changes: object) -> WorkerInfo:
    base = WorkerInfo(
        worker_id=worker_id,
        hostname="host-a",
        pid=4242,
        queues=("high", "default"),
        concurrency=10,
        driver="x",
        started_at=1_700_000_000.5,
    )
    return attrs.evolve(base, **changes)


def completed(queue: str, task_id: str) -> CompletedTask:
    return CompletedTask(
        queue=queue,
        task_id=task_id,
        task_name="tasks:send",
        attempt=2,
        worker_id="w-1",
        dispatched_at=1_700_000_000.0,
        started_at=1_700_000_001.0,
        completed_at=1_700_000_001.25,
        duration_ms=250.0,
    )


@pytest.fixture
async def cleanup(broker: Broker) -> AsyncIterator[list[str]]:
    """Worker ids a test registered, removed afterwards; completed lists removed too."""
    workers: list[str] = []
    yield workers
    if isinstance(broker.driver, WorkerRegistry):
        for worker_id in workers:
            await broker.driver.remove_worker(worker_id)
    if broker.name == "redis":
        from redis.asyncio import Redis

        from tests.integration.conftest import REDIS_URL

        async with Redis.from_url(REDIS_URL) as client:
            for queue in broker.queues:
                await client.delete(f"queue:{queue}:completed")


async def test_queue_names_list_every_queue_holding_anything(broker: Broker) -> None:
    needs(broker, QueueCatalog)
    ready, delayed, dead = broker.queue(), broker.queue(), broker.queue()
    await broker.driver.enqueue(Outgoing(ready, b"r"))
    await broker.driver.enqueue(Outgoing(delayed, b"d", delay_seconds=60))
    await broker.driver.enqueue(Outgoing(dead, b"x"))
    [delivery] = await broker.driver.dequeue([dead], limit=1, wait_seconds=0)
    entry = DeadLetterEntry(dead, b"x", "t", "n", "E", "m", 1, time.time())
    await broker.driver.dead_letter(delivery, entry)
    names = await broker.driver.queue_names()  # type: ignore[attr-defined]
    assert {ready, delayed, dead} <= set(names)
    assert names == sorted(names)


async def test_a_heartbeat_makes_a_worker_live_with_the_stores_clock(
    broker: Broker, cleanup: list[str]
) -> None:
    needs(broker, WorkerRegistry)
    registry = broker.driver
    assert isinstance(registry, WorkerRegistry)
    worker_id = f"w-{uuid.uuid4().hex}"
    cleanup.append(worker_id)
    before = time.time()
    await registry.record_heartbeat(worker(worker_id, processed=7), ttl_seconds=30)
    [found] = [w for w in await registry.live_workers() if w.worker_id == worker_id]
    assert attrs.evolve(found, last_heartbeat=0.0) == worker(worker_id, processed=7)
    assert before - 2 <= found.last_heartbeat <= time.time() + 2


async def test_a_newer_heartbeat_replaces_the_record(broker: Broker, cleanup: list[str]) -> None:
    needs(broker, WorkerRegistry)
    registry = broker.driver
    assert isinstance(registry, WorkerRegistry)
    worker_id = f"w-{uuid.uuid4().hex}"
    cleanup.append(worker_id)
    await registry.record_heartbeat(worker(worker_id, active=1), ttl_seconds=30)
    await registry.record_heartbeat(worker(worker_id, active=3, failed=2), ttl_seconds=30)
    [found] = [w for w in await registry.live_workers() if w.worker_id == worker_id]
    assert (found.active, found.failed) == (3, 2)


async def test_a_removed_worker_is_no_longer_live(broker: Broker, cleanup: list[str]) -> None:
    needs(broker, WorkerRegistry)
    registry = broker.driver
    assert isinstance(registry, WorkerRegistry)
    worker_id = f"w-{uuid.uuid4().hex}"
    await registry.record_heartbeat(worker(worker_id), ttl_seconds=30)
    await registry.remove_worker(worker_id)
    assert worker_id not in {w.worker_id for w in await registry.live_workers()}


async def test_a_worker_past_its_ttl_is_not_live(broker: Broker, cleanup: list[str]) -> None:
    needs(broker, WorkerRegistry)
    registry = broker.driver
    assert isinstance(registry, WorkerRegistry)
    gone, alive = f"w-{uuid.uuid4().hex}", f"w-{uuid.uuid4().hex}"
    cleanup.extend([gone, alive])
    await registry.record_heartbeat(worker(gone), ttl_seconds=0.001)
    await registry.record_heartbeat(worker(alive), ttl_seconds=30)
    time.sleep(0.01)  # noqa: ASYNC251 -- let 1 ms pass on every clock
    live = {w.worker_id for w in await registry.live_workers()}
    assert alive in live
    assert gone not in live


async def test_completed_tasks_are_kept_newest_first_and_bounded(broker: Broker) -> None:
    needs(broker, CompletedStore)
    store = broker.driver
    assert isinstance(store, CompletedStore)
    limit = 3
    store.completed_limit = limit  # type: ignore[attr-defined]
    q, other = broker.queue(), broker.queue()
    await store.keep_completed([completed(q, "t1"), completed(other, "o1")])
    await store.keep_completed([completed(q, f"t{i}") for i in range(2, 6)])
    kept = await store.completed_tasks(q)
    assert [t.task_id for t in kept] == ["t5", "t4", "t3"]
    assert kept[0] == completed(q, "t5")
    assert await store.completed_count(q) == limit
    assert [t.task_id for t in await store.completed_tasks(q, limit=1)] == ["t5"]
    assert [t.task_id for t in await store.completed_tasks(other)] == ["o1"]
    assert await store.completed_tasks(broker.queue()) == []


async def test_requeue_can_rewrite_bodies_and_keeps_entries_it_cannot(broker: Broker) -> None:
    needs(broker, DeadLetterStore)
    store = broker.driver
    assert isinstance(store, DeadLetterStore)
    q = broker.queue()
    for body in (b"good-1", b"bad", b"good-2"):
        await broker.driver.enqueue(Outgoing(q, body))
    for delivery in await broker.driver.dequeue([q], limit=3, wait_seconds=0):
        entry = DeadLetterEntry(q, delivery.body, delivery.body.decode(), "n", "E", "m", 3, 1.0)
        await broker.driver.dead_letter(delivery, entry)

    def rewrite(body: bytes) -> bytes:
        if body == b"bad":
            raise ValueError("cannot read it")
        return body.upper()

    assert await store.requeue_dead(q, rewrite=rewrite) == 2
    got = await broker.driver.dequeue([q], limit=10, wait_seconds=0)
    assert [d.body for d in got] == [b"GOOD-1", b"GOOD-2"]
    assert [d.delivery_count for d in got] == [1, 1]
    assert [e.task_id for e in await store.dead_letters(q)] == ["bad"]
