"""RabbitMQ-only behaviour: topology, settings, confirms, delays, dead letters, recovery (C32).

The broker's own view comes from a plain aio-pika connection and ``rabbitmqctl``. The
shared broker is never restarted: recovery is tested by closing this test's connections
from the server side (and by deleting its queue), which the driver sees exactly as it sees
a restart — its connection and channels die, unacked messages are requeued.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from typing import Any

import aio_pika
import anyio
import msgpack
import pytest
from aio_pika.abc import AbstractChannel

from asynctasq import configured, run_worker, task
from asynctasq.config.records import RabbitMQConfig
from asynctasq.drivers.protocol import DeadLetterEntry, Delivery, Outgoing, QueueSizes
from asynctasq.drivers.rabbitmq import RabbitMQDriver
from asynctasq.errors import ConfigError, DriverError
from tests.integration.drivers.rabbitmq_world import RabbitMQWorld, ready_count
from tests.integration.rabbitmq_admin import (
    close_connections,
    consumers,
    list_rows,
    queue_counts,
    require_rabbitmqctl,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def world_defaults() -> dict[str, Any]:
    """Drivers here watch their consumers every 2 s and reconnect every 1 s."""
    return {"watch_seconds": 2.0, "reconnect_seconds": 1.0}


@pytest.fixture
def ctl() -> None:
    require_rabbitmqctl()


async def until(check: Any, seconds: float, what: str) -> None:
    """Poll ``await check()`` (or a plain call) every 0.2 s until truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.2)


async def one(driver: RabbitMQDriver, queue: str, seconds: float = 10.0) -> Delivery:
    with anyio.fail_after(seconds):
        while True:
            got = await driver.dequeue([queue], limit=1, wait_seconds=1.0)
            if got:
                return got[0]


async def test_the_exchange_is_durable_direct_and_each_queue_durable_and_bound_by_name(
    world: RabbitMQWorld, ctl: None
) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"x"))
    names = {q, f"{q}_delayed", f"{q}_dead"}
    exchanges = {row[0]: row[1:] for row in list_rows("list_exchanges", "name", "type", "durable")}
    assert exchanges[world.exchange] == ["direct", "true"]
    queues = {r[0]: r[1:] for r in list_rows("list_queues", "name", "durable", "arguments")}
    assert {name: queues[name][0] for name in names} == dict.fromkeys(names, "true")
    assert "x-max-priority" in queues[q][1]
    bindings = list_rows("list_bindings", "source_name", "destination_name", "routing_key")
    mine = {(dest, key) for source, dest, key in bindings if source == world.exchange}
    assert mine == {(name, name) for name in names}


async def test_messages_are_persistent_with_the_driver_headers(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"body", visibility_timeout_seconds=2.5, task_id="t1"))
    message = await (await raw.get_queue(q)).get(timeout=5)
    await message.ack()
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.headers == {
        "x-asynctasq-count": 0,
        "x-asynctasq-vt-ms": 2500,
        "x-asynctasq-task-id": "t1",
    }


async def test_prefetch_count_bounds_what_the_broker_pushes_to_a_consumer(
    world: RabbitMQWorld, raw: AbstractChannel, ctl: None
) -> None:
    driver = await world.driver(prefetch_count=3)
    q = world.queue()
    await driver.enqueue_many([Outgoing(q, b"%d" % i) for i in range(10)])
    got = await driver.dequeue([q], limit=10, wait_seconds=0)
    assert [d.body for d in got] == [b"0", b"1", b"2"]
    assert await ready_count(raw, q) == 7
    assert consumers(q) == [3]
    await driver.ack(got)
    assert len(await driver.dequeue([q], limit=10, wait_seconds=0)) == 3


async def test_a_message_for_a_deleted_queue_declares_it_again_and_is_stored(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"first"))
    await raw.queue_delete(q)
    await driver.enqueue(Outgoing(q, b"again"))
    assert await ready_count(raw, q) == 1


async def test_a_message_sent_after_its_exchange_was_deleted_declares_it_again(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"first"))
    await raw.exchange_delete(world.exchange)
    await driver.enqueue(Outgoing(q, b"second"))
    assert await ready_count(raw, q) == 2


async def test_a_queue_declared_elsewhere_with_other_arguments_is_a_clear_error(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    q = world.queue()
    await raw.declare_queue(q, durable=True)
    driver = await world.driver()
    with pytest.raises(DriverError, match=f"queue '{q}'.*x-max-priority"):
        await driver.enqueue(Outgoing(q, b"x"))


async def test_a_delay_sent_by_a_process_that_never_consumes_is_released_by_another_when_due(
    world: RabbitMQWorld,
) -> None:
    producer, worker = await world.driver(), await world.driver()
    q = world.queue()
    sent = time.monotonic()
    await producer.enqueue(Outgoing(q, b"later", delay_seconds=1.0))
    with anyio.fail_after(10):
        while True:
            await worker.maintain([q])
            got = await worker.dequeue([q], limit=1, wait_seconds=0.1)
            if got:
                break
    assert time.monotonic() - sent >= 1.0
    assert (got[0].body, got[0].delivery_count) == (b"later", 1)
    await worker.ack(got)


async def test_a_short_delay_behind_a_long_one_is_not_held_back(world: RabbitMQWorld) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"long", delay_seconds=60))
    await driver.enqueue(Outgoing(q, b"short", delay_seconds=0.3))
    with anyio.fail_after(10):
        while not (got := await driver.dequeue([q], limit=5, wait_seconds=0.1)):
            await driver.maintain([q])
    assert [d.body for d in got] == [b"short"]
    await driver.ack(got)
    assert await driver.sizes(q) == QueueSizes(0, 1, 0, 0)


async def test_maintain_returns_the_seconds_until_the_next_delayed_message_is_due(
    world: RabbitMQWorld,
) -> None:
    driver = await world.driver()
    q, empty = world.queue(), world.queue()
    assert await driver.maintain([q, empty]) is None
    await driver.enqueue_many(
        [Outgoing(q, b"soon", delay_seconds=5.0), Outgoing(q, b"later", delay_seconds=60.0)]
    )
    due_in = await driver.maintain([q, empty])
    assert due_in is not None
    assert 4.0 < due_in <= 5.0
    assert await driver.sizes(q) == QueueSizes(0, 2, 0, 0)


async def test_an_unchanged_delayed_queue_with_nothing_due_is_not_scanned_again(
    world: RabbitMQWorld,
) -> None:
    # F5: every scan moves the whole delayed queue over the network (0.3 ms of CPU per
    # message); an idle worker scanned thousands of far-off delays every second.
    driver, other = await world.driver(), await world.driver()
    q = world.queue()
    await driver.enqueue_many([Outgoing(q, b"later", delay_seconds=60) for _ in range(3)])
    assert await driver.maintain([q]) is not None
    assert driver._delayed.scans == 1
    due_in = await driver.maintain([q])
    assert due_in is not None
    assert 0 < due_in <= 60
    assert driver._delayed.scans == 1
    await other.enqueue(Outgoing(q, b"soon", delay_seconds=0.2))  # the count changes
    with anyio.fail_after(10):
        while not (got := await driver.dequeue([q], limit=5, wait_seconds=0.1)):
            await driver.maintain([q])
    assert [d.body for d in got] == [b"soon"]
    assert driver._delayed.scans >= 2
    await driver.ack(got)
    assert await driver.sizes(q) == QueueSizes(0, 3, 0, 0)


async def test_scanners_in_several_processes_release_each_delayed_message_once(
    world: RabbitMQWorld,
) -> None:
    # C05 across connections: three drivers maintain at once while one consumes.
    scanners = [await world.driver() for _ in range(3)]
    consumer = await world.driver(prefetch_count=100)
    q = world.queue()
    sent = [b"m%d" % i for i in range(300)]
    await consumer.enqueue_many(
        [Outgoing(q, body, delay_seconds=0.05 + i / 1000) for i, body in enumerate(sent)]
    )
    seen: Counter[bytes] = Counter()

    async def scan(driver: RabbitMQDriver) -> None:
        while sum(seen.values()) < len(sent):
            await driver.maintain([q])
            await asyncio.sleep(0.01)

    async def consume() -> None:
        while sum(seen.values()) < len(sent):
            got = await consumer.dequeue([q], limit=100, wait_seconds=0.1)
            seen.update(d.body for d in got)
            await consumer.ack(got)

    with anyio.fail_after(60):
        await asyncio.gather(consume(), *(scan(driver) for driver in scanners))
    assert seen == Counter(sent)
    assert await consumer.sizes(q) == QueueSizes(0, 0, 0, 0)


async def test_a_dead_letter_keeps_the_error_in_its_headers_and_body(
    world: RabbitMQWorld, raw: AbstractChannel
) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"doomed"))
    [delivery] = await driver.dequeue([q], limit=1, wait_seconds=0)
    entry = DeadLetterEntry(q, b"doomed", "t9", "mod:fn", "ValueError", "bad input", 3, 1.5)
    await driver.dead_letter(delivery, entry)
    message = await (await raw.get_queue(f"{q}_dead")).get(timeout=5)
    await message.ack()
    assert message.headers == {
        "x-asynctasq-task-id": "t9",
        "x-asynctasq-error-type": "ValueError",
        "x-asynctasq-error": "bad input",
        "x-asynctasq-attempts": 3,
    }
    fields = msgpack.unpackb(message.body)
    assert (fields["error_type"], fields["error_message"], fields["body"]) == (
        "ValueError",
        "bad input",
        b"doomed",
    )


async def test_release_gives_back_prefetched_messages_too_in_order_and_uncounted(
    world: RabbitMQWorld, ctl: None, caplog: pytest.LogCaptureFixture
) -> None:
    first = await world.driver(prefetch_count=10)
    q = world.queue()
    await first.enqueue_many([Outgoing(q, b"%d" % i) for i in range(5)])
    held = await first.dequeue([q], limit=2, wait_seconds=0)
    with caplog.at_level(logging.INFO, "asynctasq.drivers.rabbitmq"):
        await first.release(held)
    assert "gave 3 prefetched messages (never handed out) back" in caplog.text
    assert await first.sizes(q) == QueueSizes(5, 0, 0, 0)
    second = await world.driver(prefetch_count=10)
    got = await second.dequeue([q], limit=10, wait_seconds=0)
    assert [(d.body, d.delivery_count) for d in got] == [(b"%d" % i, 1) for i in range(5)]


async def test_a_stuck_original_loses_its_copy_and_settling_it_later_is_logged_not_raised(
    world: RabbitMQWorld, ctl: None, caplog: pytest.LogCaptureFixture
) -> None:
    # C32: the original's lease (1 s, never renewed: its worker is stuck) runs out while
    # its channel is gone, so the copy runs, counted; the late ack must not crash anything.
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"work", visibility_timeout_seconds=1.0))
    stale = await one(driver, q)
    assert await asyncio.to_thread(close_connections, driver.connection_name) == 1
    again = await one(driver, q, seconds=30)
    with caplog.at_level(logging.WARNING, "asynctasq.drivers.rabbitmq"):
        await driver.ack([stale])
        await driver.retry(stale, Outgoing(q, b"retry-of-stale"))
    assert "lost with their channel" in caplog.text
    assert "not stored" in caplog.text
    assert (again.body, again.delivery_count) == (b"work", 2)
    await driver.ack([again])
    assert await driver.sizes(q) == QueueSizes(0, 0, 0, 0)


async def test_a_copy_redelivered_while_its_original_still_runs_waits_and_is_settled_by_it(
    world: RabbitMQWorld, ctl: None
) -> None:
    # C09/C32: the connection drops while a task runs; the broker requeues it and delivers
    # it to this driver again. The copy must not run while the original does: it waits,
    # and the original's ack settles it, so the task runs and is recorded once.
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"long task"))
    running = await one(driver, q)
    assert await asyncio.to_thread(close_connections, driver.connection_name) == 1
    await until(lambda: queue_counts(q)[q] == (0, 1), 30, "the copy held by the driver again")
    assert await driver.dequeue([q], limit=5, wait_seconds=1.0) == []
    await driver.ack([running])
    await until(lambda: queue_counts(q)[q] == (0, 0), 10, "the copy acked")
    assert await driver.dequeue([q], limit=5, wait_seconds=0.5) == []


async def test_a_task_finished_while_disconnected_is_not_run_again_when_its_copy_comes_back(
    world: RabbitMQWorld, ctl: None
) -> None:
    driver = await world.driver()
    q = world.queue()
    await driver.enqueue(Outgoing(q, b"quick task"))
    finished = await one(driver, q)
    assert await asyncio.to_thread(close_connections, driver.connection_name) == 1
    await driver.ack([finished])  # its channel is gone: the broker will deliver it again
    await until(lambda: queue_counts(q)[q] == (0, 0), 30, "the late copy acked on arrival")
    assert await driver.dequeue([q], limit=5, wait_seconds=0.5) == []


async def test_a_message_only_prefetched_when_the_connection_dropped_comes_back_uncounted(
    world: RabbitMQWorld, ctl: None
) -> None:
    driver = await world.driver(prefetch_count=10)
    q = world.queue()
    await driver.enqueue_many([Outgoing(q, b"started"), Outgoing(q, b"prefetched")])
    [started] = await driver.dequeue([q], limit=1, wait_seconds=0)
    assert await asyncio.to_thread(close_connections, driver.connection_name) == 1
    again = await one(driver, q, seconds=30)
    assert (again.body, again.delivery_count) == (b"prefetched", 1)
    await driver.ack([started, again])
    await until(lambda: queue_counts(q)[q] == (0, 0), 10, "both settled")


async def test_shutting_down_while_disconnected_is_quick_and_loses_nothing(
    world: RabbitMQWorld, ctl: None
) -> None:
    driver = await world.driver(prefetch_count=10, reconnect_seconds=30)
    q = world.queue()
    await driver.enqueue_many([Outgoing(q, b"running"), Outgoing(q, b"prefetched")])
    held = await driver.dequeue([q], limit=1, wait_seconds=0)
    assert await asyncio.to_thread(close_connections, driver.connection_name) == 1
    await asyncio.sleep(0.2)  # bounded: the client reads the broker's close frame
    started = time.monotonic()
    with pytest.raises(DriverError, match=r"rabbitmq release failed: .*connection is down"):
        await driver.release(held)
    await driver.close()
    assert time.monotonic() - started < 2
    successor = await world.driver(prefetch_count=10)
    with anyio.fail_after(15):
        got: list[Delivery] = []
        while len(got) < 2:
            got += await successor.dequeue([q], limit=2, wait_seconds=1.0)
    assert sorted(d.body for d in got) == [b"prefetched", b"running"]


async def test_consumers_and_their_prefetch_come_back_after_the_server_closed_the_connection(
    world: RabbitMQWorld, ctl: None
) -> None:
    # C32: after the connection dies, every queue has a consumer again, QoS restored.
    driver = await world.driver(prefetch_count=7)
    a, b = world.queue(), world.queue()
    assert await driver.dequeue([a, b], limit=1, wait_seconds=0) == []
    assert (consumers(a), consumers(b)) == ([7], [7])
    assert await asyncio.to_thread(close_connections, driver.connection_name) == 1
    await until(lambda: consumers(a) == [7] and consumers(b) == [7], 30, "consumers restored")
    await driver.enqueue_many([Outgoing(a, b"to-a"), Outgoing(b, b"to-b")])
    with anyio.fail_after(10):
        got: list[Delivery] = []
        while len(got) < 2:
            got += await driver.dequeue([a, b], limit=2, wait_seconds=1.0)
    assert sorted(d.body for d in got) == [b"to-a", b"to-b"]


async def test_a_consumer_cancelled_because_its_queue_was_deleted_comes_back(
    world: RabbitMQWorld, raw: AbstractChannel, ctl: None
) -> None:
    driver = await world.driver(prefetch_count=4)
    q = world.queue()
    assert await driver.dequeue([q], limit=1, wait_seconds=0) == []
    await raw.queue_delete(q)
    await until(lambda: consumers(q) == [4], 30, "the consumer registered again")
    await driver.enqueue(Outgoing(q, b"after"))
    assert (await one(driver, q)).body == b"after"


async def test_the_watchdog_consumes_again_when_a_consumer_vanished_unnoticed(
    world: RabbitMQWorld,
) -> None:
    driver = await world.driver(watch_seconds=0.3)
    q = world.queue()
    assert await driver.dequeue([q], limit=1, wait_seconds=0) == []
    channel = await driver._consumers._channel.get_underlay_channel()  # type: ignore[union-attr]
    await channel.basic_cancel(driver._consumers._tags[q])  # behind aio-pika's back
    await driver.enqueue(Outgoing(q, b"still consumed"))
    assert (await one(driver, q, seconds=10)).body == b"still consumed"


async def test_errors_name_the_operation_and_never_the_password(rabbitmq_url: str) -> None:
    wrong = rabbitmq_url.replace("guest:guest@", "guest:s3cr3t-pw@")
    with pytest.raises(DriverError, match="rabbitmq open failed") as caught:
        await RabbitMQDriver(RabbitMQConfig(url=wrong), operation_timeout_seconds=10).open()
    assert "s3cr3t-pw" not in str(caught.value)
    nowhere = RabbitMQDriver(RabbitMQConfig(url="amqp://guest:s3cr3t-pw@127.0.0.1:1/"))
    with pytest.raises(DriverError, match="rabbitmq open failed") as caught:
        await nowhere.open()
    assert "s3cr3t-pw" not in str(caught.value)


@task(max_attempts=1)
async def never_run() -> None:
    raise AssertionError("a worker on a refused queue name must not start")


@pytest.mark.parametrize(
    ("queue", "why"),
    [
        ("emails_dead", "names ending in '_dead' are taken"),
        ("emails_delayed", "names ending in '_delayed' are taken"),
        ("emails_completed", "names ending in '_completed' are taken"),
        ("{exchange}.workers", "for monitoring"),
        ("amq.mine", "RabbitMQ reserves names starting with 'amq.'"),
    ],
)
async def test_queue_names_the_driver_keeps_are_refused_at_dispatch_and_worker_start(
    world: RabbitMQWorld, queue: str, why: str
) -> None:
    # F6: such a queue collides with a companion queue (declared with other arguments) or
    # is refused by the broker; the worker looped with tracebacks instead of refusing.
    name = queue.format(exchange=world.exchange)
    driver = await world.driver()
    with pytest.raises(ConfigError, match=re.escape(why)):
        await driver.enqueue(Outgoing(name, b"x"))
    with pytest.raises(ConfigError, match=re.escape(why)):
        await driver.dequeue([name], limit=1, wait_seconds=0)
    settings = {
        "driver": "rabbitmq",
        "rabbitmq": {"url": world.url, "exchange_name": world.exchange},
    }
    async with configured(settings) as handle:
        with pytest.raises(ConfigError, match=re.escape(why)):
            await run_worker(handle, tasks=[never_run], queues=[name], handle_signals=False)
