"""The memory driver's edge cases, on a fake clock (no waiting for real time)."""

from __future__ import annotations

import asyncio

import pytest

from asynctasq.config.records import Config
from asynctasq.drivers import build_driver
from asynctasq.drivers.memory import MemoryDriver
from asynctasq.drivers.protocol import (
    DeadLetterEntry,
    DeadLetterStore,
    Driver,
    Outgoing,
    QueueSizes,
)

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def driver(clock: Clock) -> MemoryDriver:
    return MemoryDriver(clock=clock)


async def take(driver: MemoryDriver, *queues: str, limit: int = 100) -> list[bytes]:
    return [d.body for d in await driver.dequeue(queues, limit=limit, wait_seconds=0)]


def test_build_driver_makes_a_memory_driver_that_meets_both_protocols() -> None:
    driver = build_driver(Config(driver="memory"))
    assert isinstance(driver, MemoryDriver)
    assert isinstance(driver, Driver)
    assert isinstance(driver, DeadLetterStore)
    assert driver.max_message_bytes is None


async def test_a_delayed_message_becomes_ready_only_when_due_and_maintained(
    driver: MemoryDriver, clock: Clock
) -> None:
    await driver.enqueue(Outgoing("q", b"later", delay_seconds=10))
    clock.now += 9.999
    await driver.maintain(["q"])
    assert await take(driver, "q") == []
    clock.now += 0.001
    assert await take(driver, "q") == []  # due, but not promoted until maintain()
    await driver.maintain(["q"])
    assert await take(driver, "q") == [b"later"]


async def test_delayed_messages_are_promoted_in_due_order_behind_ready_ones(
    driver: MemoryDriver, clock: Clock
) -> None:
    await driver.enqueue(Outgoing("q", b"due-second", delay_seconds=2))
    await driver.enqueue(Outgoing("q", b"due-first", delay_seconds=1))
    await driver.enqueue(Outgoing("q", b"ready"))
    clock.now += 5
    await driver.maintain(["q"])
    assert await take(driver, "q") == [b"ready", b"due-first", b"due-second"]


async def test_an_expired_lease_goes_back_to_the_front_with_its_count(
    driver: MemoryDriver, clock: Clock
) -> None:
    await driver.enqueue_many(
        [Outgoing("q", b"a", visibility_timeout_seconds=5), Outgoing("q", b"b")]
    )
    [first] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    clock.now += 5
    await driver.maintain(["q"])
    again = await driver.dequeue(["q"], limit=2, wait_seconds=0)
    assert [(d.body, d.delivery_count) for d in again] == [(b"a", 2), (b"b", 1)]
    await driver.ack([first])
    assert (await driver.sizes("q")).in_flight == 2


async def test_expired_leases_return_earliest_deadline_first(
    driver: MemoryDriver, clock: Clock
) -> None:
    await driver.enqueue(Outgoing("q", b"long", visibility_timeout_seconds=3))
    await driver.enqueue(Outgoing("q", b"short", visibility_timeout_seconds=1))
    await take(driver, "q")
    clock.now += 3
    await driver.maintain(["q"])
    assert await take(driver, "q") == [b"short", b"long"]


async def test_extend_moves_the_deadline_from_now(driver: MemoryDriver, clock: Clock) -> None:
    await driver.enqueue(Outgoing("q", b"a", visibility_timeout_seconds=5))
    [held] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    clock.now += 4
    await driver.extend([held])
    clock.now += 4
    await driver.maintain(["q"])
    assert await take(driver, "q") == []
    clock.now += 1
    await driver.maintain(["q"])
    assert await take(driver, "q") == [b"a"]


async def test_extend_does_not_revive_a_lost_lease(driver: MemoryDriver, clock: Clock) -> None:
    await driver.enqueue(Outgoing("q", b"a", visibility_timeout_seconds=1))
    [stale] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    clock.now += 1
    await driver.maintain(["q"])
    await driver.extend([stale])
    assert await driver.sizes("q") == QueueSizes(1, 0, 0, 0)


async def test_release_restores_the_count_of_each_message(driver: MemoryDriver) -> None:
    await driver.enqueue(Outgoing("q", b"a"))
    [held] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    await driver.release([held])
    await driver.release([held])  # a second release of the same lease does nothing
    [again] = await driver.dequeue(["q"], limit=5, wait_seconds=0)
    assert again.delivery_count == 1


async def test_a_stale_ack_logs_a_warning_and_keeps_the_new_lease(
    driver: MemoryDriver, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await driver.enqueue(Outgoing("q", b"a", visibility_timeout_seconds=1))
    [stale] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    clock.now += 1
    await driver.maintain(["q"])
    await take(driver, "q")
    await driver.ack([stale])
    assert "1 of 1 leases were already lost" in caplog.text
    assert (await driver.sizes("q")).in_flight == 1


async def test_a_waiting_dequeue_wakes_on_enqueue(driver: MemoryDriver) -> None:
    waiting = asyncio.create_task(driver.dequeue(["a", "b"], limit=3, wait_seconds=60))
    await asyncio.sleep(0)
    assert not waiting.done()
    await driver.enqueue(Outgoing("b", b"x"))
    got = await asyncio.wait_for(waiting, 5)
    assert [(d.queue, d.body) for d in got] == [("b", b"x")]


async def test_a_waiting_dequeue_ignores_other_queues_until_its_own_gets_work(
    driver: MemoryDriver,
) -> None:
    waiting = asyncio.create_task(driver.dequeue(["mine"], limit=1, wait_seconds=60))
    await asyncio.sleep(0)
    await driver.enqueue(Outgoing("other", b"not mine"))
    await asyncio.sleep(0)
    assert not waiting.done()
    await driver.enqueue(Outgoing("mine", b"mine"))
    assert [d.body for d in await asyncio.wait_for(waiting, 5)] == [b"mine"]


async def test_a_waiting_dequeue_wakes_on_promotion(driver: MemoryDriver, clock: Clock) -> None:
    await driver.enqueue(Outgoing("q", b"later", delay_seconds=1))
    waiting = asyncio.create_task(driver.dequeue(["q"], limit=1, wait_seconds=60))
    await asyncio.sleep(0)
    clock.now += 1
    await driver.maintain(["q"])
    assert [d.body for d in await asyncio.wait_for(waiting, 5)] == [b"later"]


async def test_close_wakes_waiters_which_return_nothing_after_their_wait(
    driver: MemoryDriver,
) -> None:
    waiting = asyncio.create_task(driver.dequeue(["q"], limit=1, wait_seconds=0.05))
    await asyncio.sleep(0)
    await driver.close()
    assert await asyncio.wait_for(waiting, 5) == []


async def test_unknown_queues_are_empty(driver: MemoryDriver) -> None:
    assert await driver.sizes("nope") == QueueSizes(0, 0, 0, 0)
    assert await driver.dead_letters("nope") == []
    assert await driver.requeue_dead("nope") == 0
    assert await driver.purge_dead("nope") == 0
    await driver.maintain(["nope"])
    assert await driver.dequeue(["nope"], limit=1, wait_seconds=0) == []


async def test_requeued_dead_letters_keep_their_visibility_timeout(
    driver: MemoryDriver, clock: Clock
) -> None:
    await driver.enqueue(Outgoing("q", b"a", visibility_timeout_seconds=7))
    [d] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    await driver.dead_letter(d, DeadLetterEntry("q", b"a", "t", "n", "E", "m", 1, 0.0))
    assert await driver.requeue_dead("q", ["t"]) == 1
    [again] = await driver.dequeue(["q"], limit=1, wait_seconds=0)
    assert (again.visibility_timeout_seconds, again.delivery_count) == (7, 1)
