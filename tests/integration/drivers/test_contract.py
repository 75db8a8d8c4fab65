"""The driver contract (SPEC §4-5): one behavioural suite, run against every driver.

Bounded waits only: a test that needs time to pass polls with ``dequeue(wait_seconds=...)``
under ``anyio.fail_after``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Sequence

import anyio
import pytest

from asynctasq.drivers.protocol import (
    DeadLetterEntry,
    DeadLetterStore,
    Delivery,
    Driver,
    Outgoing,
    QueueSizes,
)
from tests.integration.drivers.brokers import Broker

pytestmark = pytest.mark.anyio


def out(queue: str, body: bytes, **kw: float) -> Outgoing:
    return Outgoing(queue, body, **kw)


def bodies(deliveries: Sequence[Delivery]) -> list[bytes]:
    return [d.body for d in deliveries]


async def take(driver: Driver, queues: Sequence[str], limit: int = 100) -> list[Delivery]:
    return await driver.dequeue(queues, limit=limit, wait_seconds=0)


async def next_after_maintain(
    driver: Driver, queue: str, timeout_seconds: float = 5.0
) -> list[Delivery]:
    """Run maintain + a short blocking dequeue until something comes, at most ``timeout``."""
    with anyio.fail_after(timeout_seconds):
        while True:
            await driver.maintain([queue])
            got = await driver.dequeue([queue], limit=100, wait_seconds=0.02)
            if got:
                return got


async def redelivered(broker: Broker, queue: str) -> list[Delivery]:
    """Return the deliveries of ``queue`` once more after this consumer's leases were lost.

    Timed leases (a visibility timeout of 0.2-0.3 s in these tests) expire and ``maintain``
    recovers them. RabbitMQ holds a delivery until its consumer's channel closes, so the
    broker fixture closes the driver's connection (as a crash or a network drop would)
    and the driver, reconnected, receives them again.
    """
    if broker.lose_leases is None:
        return await next_after_maintain(broker.driver, queue)
    await broker.lose_leases()
    with anyio.fail_after(30):
        while True:
            got = await broker.driver.dequeue([queue], limit=100, wait_seconds=1.0)
            if got:
                return got


def entry(queue: str, body: bytes, task_id: str) -> DeadLetterEntry:
    return DeadLetterEntry(
        queue, body, task_id, "tasks:send", "ValueError", "boom", 3, 1700000000.25
    )


async def test_messages_come_out_in_the_order_they_went_in(broker: Broker) -> None:
    q = broker.queue()
    for i in range(5):
        await broker.driver.enqueue(out(q, b"m%d" % i))
    got = await take(broker.driver, [q])
    assert bodies(got) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [d.queue for d in got] == [q] * 5
    assert [d.delivery_count for d in got] == [1] * 5


async def test_bodies_round_trip_byte_for_byte(broker: Broker) -> None:
    q = broker.queue()
    body = b"\x00:1:2:\xff" + bytes(range(256))
    await broker.driver.enqueue(out(q, body))
    assert bodies(await take(broker.driver, [q])) == [body]


async def test_earlier_queues_are_served_first(broker: Broker) -> None:
    high, low = broker.queue(), broker.queue()
    await broker.driver.enqueue_many([out(low, b"low-1"), out(low, b"low-2")])
    await broker.driver.enqueue_many([out(high, b"high-1"), out(high, b"high-2")])
    got = await broker.driver.dequeue([high, low], limit=3, wait_seconds=0)
    assert [(d.queue, d.body) for d in got] == [
        (high, b"high-1"),
        (high, b"high-2"),
        (low, b"low-1"),
    ]


async def test_dequeue_takes_at_most_limit(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue_many([out(q, b"%d" % i) for i in range(5)])
    assert len(await broker.driver.dequeue([q], limit=2, wait_seconds=0)) == 2
    assert len(await broker.driver.dequeue([q], limit=10, wait_seconds=0)) == 3
    assert await broker.driver.dequeue([q], limit=10, wait_seconds=0) == []
    await broker.driver.enqueue(out(q, b"kept"))
    assert await broker.driver.dequeue([q], limit=0, wait_seconds=0) == []
    assert await broker.driver.dequeue([], limit=5, wait_seconds=0) == []
    assert (await broker.driver.sizes(q)).ready == 1


async def test_empty_dequeue_waits_about_wait_seconds_then_returns_nothing(broker: Broker) -> None:
    q = broker.queue()
    started = time.monotonic()
    assert await broker.driver.dequeue([q], limit=1, wait_seconds=0.3) == []
    assert 0.25 <= time.monotonic() - started < 3


async def test_waiting_dequeue_returns_as_soon_as_any_queue_gets_a_message(broker: Broker) -> None:
    first, second = broker.queue(), broker.queue()
    waiting = asyncio.create_task(broker.driver.dequeue([first, second], limit=5, wait_seconds=20))
    await asyncio.sleep(0.2)  # bounded: lets the dequeue reach its blocking wait first
    assert not waiting.done()
    started = time.monotonic()
    await broker.driver.enqueue(out(second, b"wake"))
    with anyio.fail_after(5):
        got = await waiting
    assert [(d.queue, d.body) for d in got] == [(second, b"wake")]
    assert time.monotonic() - started < 5


async def test_one_message_goes_to_exactly_one_of_two_waiting_consumers(broker: Broker) -> None:
    q = broker.queue()
    waiters = [
        asyncio.create_task(broker.driver.dequeue([q], limit=5, wait_seconds=1.0)) for _ in range(2)
    ]
    await asyncio.sleep(0.1)  # bounded: both are waiting
    await broker.driver.enqueue(out(q, b"only"))
    with anyio.fail_after(5):
        results = await asyncio.gather(*waiters)
    assert sorted(len(r) for r in results) == [0, 1]


async def test_a_delayed_message_is_never_delivered_early(broker: Broker) -> None:
    q = broker.queue()
    started = time.monotonic()
    await broker.driver.enqueue(out(q, b"later", delay_seconds=1.0))
    await broker.driver.maintain([q])
    assert await take(broker.driver, [q]) == []
    assert (await broker.driver.sizes(q)).delayed == 1
    got = await next_after_maintain(broker.driver, q)
    assert time.monotonic() - started >= 0.999
    assert bodies(got) == [b"later"]
    assert got[0].delivery_count == 1


async def test_delayed_messages_are_promoted_exactly_once_by_concurrent_maintainers(
    broker: Broker,
) -> None:
    # C05: 4 consumers, each also running maintain(), over 2000 randomly delayed messages.
    q = broker.queue()
    rng = random.Random(5)
    sent = [b"task-%d" % i for i in range(2000)]
    await broker.driver.enqueue_many(
        [out(q, b, delay_seconds=rng.uniform(0.05, 0.3)) for b in sent]
    )
    seen: Counter[bytes] = Counter()

    async def consume() -> None:
        while sum(seen.values()) < len(sent):
            await broker.driver.maintain([q])
            got = await broker.driver.dequeue([q], limit=50, wait_seconds=0.02)
            seen.update(bodies(got))
            if got:
                await broker.driver.ack(got)

    with anyio.fail_after(60):
        await asyncio.gather(*(consume() for _ in range(4)))
    await broker.driver.maintain([q])
    assert seen == Counter(sent)
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 0)


async def test_an_expired_lease_is_delivered_again_with_a_higher_count(broker: Broker) -> None:
    # C01: the consumer "died" (never acked); after the visibility timeout it comes back.
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"work", visibility_timeout_seconds=0.3))
    [first] = await take(broker.driver, [q])
    assert first.delivery_count == 1
    await broker.driver.maintain([q])
    assert await take(broker.driver, [q]) == []
    [again] = await redelivered(broker, q)
    assert (again.body, again.delivery_count) == (b"work", 2)
    await broker.driver.ack([first])  # the dead consumer's ack: lease lost, skipped
    assert (await broker.driver.sizes(q)).in_flight == 1
    await broker.driver.ack([again])
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 0)


async def test_a_late_ack_removes_a_message_nobody_took_again(broker: Broker) -> None:
    # The worker repeats a failed ack past the lease (an outage longer than the visibility
    # timeout): an ack after the lease expired, before anyone took the message again,
    # removes it, so the finished task does not run twice. SQS cannot tell a stale receipt
    # handle from a live one, so its driver skips leases past their deadline: it comes back.
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"finished", visibility_timeout_seconds=0.3))
    [late] = await take(broker.driver, [q])
    # The lease expires (SQS' timeouts are whole seconds: 1 s); no maintain, no other consumer.
    await anyio.sleep(1.3 if broker.name == "sqs" else 0.5)
    await broker.driver.ack([late])
    if broker.name == "sqs":
        [again] = await redelivered(broker, q)
        assert again.body == b"finished"
        await broker.driver.ack([again])
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 0)
    await broker.driver.maintain([q])
    assert await take(broker.driver, [q]) == []


async def test_extending_a_lease_keeps_the_message_from_anyone_else(broker: Broker) -> None:
    # C06: a healthy long task keeps its lease past several visibility timeouts.
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"long", visibility_timeout_seconds=0.5))
    [held] = await take(broker.driver, [q])
    until = time.monotonic() + 1.6
    while time.monotonic() < until:
        await broker.driver.extend([held])
        await broker.driver.maintain([q])
        assert await broker.driver.dequeue([q], limit=1, wait_seconds=0.1) == []
    await broker.driver.ack([held])
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 0)


async def test_ack_removes_the_message_for_good(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue_many([out(q, b"a", visibility_timeout_seconds=0.2), out(q, b"b")])
    got = await take(broker.driver, [q])
    await broker.driver.ack(got)
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 0)
    await broker.driver.maintain([q])
    assert await take(broker.driver, [q]) == []


async def test_ack_accepts_deliveries_from_several_queues(broker: Broker) -> None:
    one, two = broker.queue(), broker.queue()
    await broker.driver.enqueue_many([out(one, b"1"), out(two, b"2")])
    got = await take(broker.driver, [one, two])
    await broker.driver.ack(got)
    assert (
        (await broker.driver.sizes(one)).in_flight
        == (await broker.driver.sizes(two)).in_flight
        == 0
    )


async def test_retry_stores_the_next_attempt_and_drops_the_old_one(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"attempt-1"))
    [old] = await take(broker.driver, [q])
    await broker.driver.retry(old, out(q, b"attempt-2"))
    assert await broker.driver.sizes(q) == QueueSizes(1, 0, 0, 0)
    [new] = await take(broker.driver, [q])
    assert (new.body, new.delivery_count) == (b"attempt-2", 1)


async def test_retry_with_a_delay_waits_in_the_delayed_store(broker: Broker) -> None:
    q, other = broker.queue(), broker.queue()
    await broker.driver.enqueue(out(q, b"attempt-1"))
    [old] = await take(broker.driver, [q])
    await broker.driver.retry(old, out(other, b"attempt-2", delay_seconds=60))
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 0)
    assert await broker.driver.sizes(other) == QueueSizes(0, 1, 0, 0)


async def test_retry_of_a_lost_lease_stores_nothing(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"attempt-1", visibility_timeout_seconds=0.2))
    [stale] = await take(broker.driver, [q])
    [current] = await redelivered(broker, q)
    await broker.driver.retry(stale, out(q, b"attempt-2"))
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 1, 0)
    await broker.driver.ack([current])


async def test_dead_letter_keeps_every_field_and_drops_the_lease(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"doomed"))
    [d] = await take(broker.driver, [q])
    kept = entry(q, d.body, "task-1")
    await broker.driver.dead_letter(d, kept)
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 1)
    assert isinstance(broker.driver, DeadLetterStore)
    assert await broker.driver.dead_letters(q) == [kept]


async def test_dead_letter_of_a_lost_lease_stores_nothing(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"doomed", visibility_timeout_seconds=0.2))
    [stale] = await take(broker.driver, [q])
    [current] = await redelivered(broker, q)
    await broker.driver.dead_letter(stale, entry(q, stale.body, "task-1"))
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 1, 0)
    await broker.driver.ack([current])


async def test_release_puts_messages_back_in_front_without_counting_an_attempt(
    broker: Broker,
) -> None:
    q = broker.queue()
    await broker.driver.enqueue_many([out(q, b"a"), out(q, b"b"), out(q, b"c")])
    held = await broker.driver.dequeue([q], limit=2, wait_seconds=0)
    await broker.driver.release(held)
    assert await broker.driver.sizes(q) == QueueSizes(3, 0, 0, 0)
    again = [(d.body, d.delivery_count) for d in await take(broker.driver, [q])]
    if not broker.released_to_front:  # SQS: released copies join the back of the queue
        again.sort()
    assert again == [(b"a", 1), (b"b", 1), (b"c", 1)]


async def test_release_after_a_crash_recovery_keeps_the_raised_count(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue(out(q, b"a", visibility_timeout_seconds=0.2))
    await take(broker.driver, [q])
    [second] = await redelivered(broker, q)
    await broker.driver.release([second])
    [third] = await take(broker.driver, [q])
    assert third.delivery_count == 2


async def test_sizes_count_each_state(broker: Broker) -> None:
    q = broker.queue()
    await broker.driver.enqueue_many(
        [out(q, b"dead"), out(q, b"flight"), out(q, b"ready"), out(q, b"later", delay_seconds=60)]
    )
    dead, flight = await broker.driver.dequeue([q], limit=2, wait_seconds=0)
    await broker.driver.dead_letter(dead, entry(q, dead.body, "t"))
    assert await broker.driver.sizes(q) == QueueSizes(ready=1, delayed=1, in_flight=1, dead=1)
    await broker.driver.ack([flight])


async def test_enqueue_many_keeps_order_per_queue_and_honours_delays(broker: Broker) -> None:
    one, two = broker.queue(), broker.queue()
    await broker.driver.enqueue_many(
        [
            out(one, b"1a"),
            out(two, b"2a"),
            out(one, b"1-later", delay_seconds=60),
            out(one, b"1b"),
            out(two, b"2b"),
        ]
    )
    assert bodies(await take(broker.driver, [one])) == [b"1a", b"1b"]
    assert bodies(await take(broker.driver, [two])) == [b"2a", b"2b"]
    assert (await broker.driver.sizes(one)).delayed == 1
    await broker.driver.enqueue_many([])


async def test_dead_letters_can_be_listed_requeued_and_purged(broker: Broker) -> None:
    q = broker.queue()
    store = broker.driver
    assert isinstance(store, DeadLetterStore)
    await broker.driver.enqueue_many([out(q, b"body-%d" % i) for i in range(4)])
    for i, d in enumerate(await take(broker.driver, [q])):
        await broker.driver.dead_letter(d, entry(q, d.body, f"t{i}"))
    listed = await store.dead_letters(q, limit=3)
    assert [e.task_id for e in listed] == ["t0", "t1", "t2"]
    assert await store.requeue_dead(q, ["t1", "missing"]) == 1
    assert [e.task_id for e in await store.dead_letters(q)] == ["t0", "t2", "t3"]
    [requeued] = await take(broker.driver, [q])
    assert (requeued.body, requeued.delivery_count) == (b"body-1", 1)
    await broker.driver.ack([requeued])
    assert await store.requeue_dead(q) == 3
    assert bodies(await take(broker.driver, [q])) == [b"body-0", b"body-2", b"body-3"]
    await broker.driver.dead_letter(requeued, entry(q, b"x", "gone"))  # lease lost: ignored
    assert await store.purge_dead(q) == 0
    assert await store.dead_letters(q) == []


async def test_purge_removes_every_dead_letter(broker: Broker) -> None:
    q = broker.queue()
    store = broker.driver
    assert isinstance(store, DeadLetterStore)
    await broker.driver.enqueue_many([out(q, b"1"), out(q, b"2")])
    for d in await take(broker.driver, [q]):
        await broker.driver.dead_letter(d, entry(q, d.body, "t"))
    assert await store.purge_dead(q) == 2
    assert await broker.driver.sizes(q) == QueueSizes(0, 0, 0, 0)
    assert await store.requeue_dead(q) == 0


async def test_the_driver_reports_its_name_and_limits(broker: Broker) -> None:
    assert isinstance(broker.driver, Driver)
    assert broker.driver.name == broker.name
    interval = broker.driver.maintenance_interval_seconds
    assert interval is None or interval > 0
    size = broker.driver.max_message_bytes
    assert size is None or size > 1024
