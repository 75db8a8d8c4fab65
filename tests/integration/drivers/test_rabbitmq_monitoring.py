"""RabbitMQ's queue catalog, worker registry and completed tasks: what peeking must keep.

The protocols themselves are tested for every driver in ``test_inspection.py``; here are
the RabbitMQ-only promises: a read leaves its queue as it was (and task queues untouched),
readers in several processes never see each other's held messages, the catalog compacts
itself, a reader that died does not keep the lock, and a completed queue declared with
another bound keeps working.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel

from asynctasq.drivers.protocol import CompletedTask, Outgoing, WorkerInfo
from asynctasq.drivers.rabbitmq import RabbitMQDriver
from asynctasq.errors import DriverError
from tests.integration.drivers.rabbitmq_world import RabbitMQWorld, ready_count

pytestmark = pytest.mark.anyio


def worker(worker_id: str) -> WorkerInfo:
    return WorkerInfo(worker_id, "host-a", 1, ("default",), 4, "rabbitmq", 1_700_000_000.0)


def completed(queue: str, task_id: str) -> CompletedTask:
    return CompletedTask(queue, task_id, "tasks:x", 1, "w", 1.0, 2.0, 3.0, 1000.0)


async def test_reads_leave_their_queues_as_they_were_and_task_queues_untouched(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue_many([Outgoing(q, b"1"), Outgoing(q, b"2"), Outgoing(q, b"3")])
    [held] = await driver.dequeue([q], limit=1, wait_seconds=0)
    assert await ready_count(raw, q) == 2
    await driver.record_heartbeat(worker("w-a"), ttl_seconds=60)
    await driver.record_heartbeat(worker("w-b"), ttl_seconds=60)
    await driver.keep_completed([completed(q, f"t{i}") for i in range(4)])
    for _ in range(2):
        assert [w.worker_id for w in await driver.live_workers()] == ["w-a", "w-b"]
        assert [t.task_id for t in await driver.completed_tasks(q)] == ["t3", "t2", "t1", "t0"]
        assert await driver.queue_names() == [q]
    assert await ready_count(raw, f"{q}_completed") == 4
    assert await ready_count(raw, f"{world.exchange}.workers") == 2
    assert await ready_count(raw, q) == 2
    await driver.ack([held])
    assert held.body == b"1"


async def test_readers_in_several_processes_each_see_every_record(world: RabbitMQWorld) -> None:
    readers = [await world.driver() for _ in range(3)]
    q = world.queue()
    ids = [f"w-{i:02}" for i in range(20)]
    for worker_id in ids:
        await readers[0].record_heartbeat(worker(worker_id), ttl_seconds=60)
    await readers[0].keep_completed([completed(q, f"t{i}") for i in range(50)])

    async def read(driver: RabbitMQDriver) -> tuple[list[str], int, int]:
        live = [w.worker_id for w in await driver.live_workers()]
        return (
            live,
            len(await driver.completed_tasks(q, limit=1000)),
            await driver.completed_count(q),
        )

    results = await asyncio.gather(*(read(driver) for driver in readers * 3))
    assert results == [(ids, 50, 50)] * 9


async def test_the_catalog_keeps_one_record_per_queue_and_forgets_deleted_queues(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    first, second = await world.driver(), await world.driver()
    kept, emptied, deleted = world.queue(), world.queue(), world.queue()
    for driver in (first, second):
        for queue in (kept, emptied, deleted):
            await driver.enqueue(Outgoing(queue, b"x"))
    await (await raw.get_queue(emptied)).purge()
    for name in (deleted, f"{deleted}_delayed", f"{deleted}_dead"):
        await raw.queue_delete(name)
    assert await ready_count(raw, f"{world.exchange}.queues") == 6

    assert await first.queue_names() == [kept]
    assert await ready_count(raw, f"{world.exchange}.queues") == 2  # kept and emptied, once each


async def test_a_reader_that_died_does_not_keep_the_lock(
    world: RabbitMQWorld, rabbitmq_url: str
) -> None:
    driver = await world.driver(operation_timeout_seconds=0.5)
    await driver.record_heartbeat(worker("w-a"), ttl_seconds=60)
    other = await aio_pika.connect(rabbitmq_url)
    channel = await other.channel()
    await channel.declare_queue(f"{world.exchange}.reader-lock", exclusive=True)
    with pytest.raises(DriverError, match=r"live_workers.*reader-lock"):
        await driver.live_workers()
    await other.close()  # the broker deletes the exclusive queue with its connection
    assert [w.worker_id for w in await driver.live_workers()] == ["w-a"]


async def test_a_completed_queue_declared_with_another_bound_keeps_its_own(
    world: RabbitMQWorld, caplog: pytest.LogCaptureFixture
) -> None:
    small, large = await world.driver(completed_limit=3), await world.driver(completed_limit=5)
    q = world.queue()
    await small.keep_completed([completed(q, "t0")])
    with caplog.at_level(logging.WARNING, "asynctasq.drivers.rabbitmq"):
        await large.keep_completed([completed(q, f"t{i}") for i in range(1, 5)])
    assert "exists with other arguments" in caplog.text
    assert await large.completed_count(q) == 3
    assert [t.task_id for t in await large.completed_tasks(q)] == ["t4", "t3", "t2"]


async def test_a_removed_worker_stays_removed_after_its_older_heartbeats_are_read(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    driver = await world.driver()
    for _ in range(3):
        await driver.record_heartbeat(worker("w-a"), ttl_seconds=60)
    await driver.record_heartbeat(worker("w-b"), ttl_seconds=60)
    await driver.remove_worker("w-a")
    assert [w.worker_id for w in await driver.live_workers()] == ["w-b"]
    assert await ready_count(raw, f"{world.exchange}.workers") == 2  # w-a's removal, w-b
    assert [w.worker_id for w in await driver.live_workers()] == ["w-b"]
