"""Fetching: never more than the free slots, max_tasks, queue priority without starvation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from asynctasq.drivers.protocol import Delivery
from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many, task
from asynctasq.worker.fetch import queue_order
from tests.unit.worker.conftest import memory, sizes, work

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("fetch_number", "expected"),
    [
        (0, ["a", "b", "c"]),
        (6, ["a", "b", "c"]),
        (7, ["b", "a", "c"]),
        (8, ["a", "b", "c"]),
        (15, ["c", "a", "b"]),
        (23, ["b", "a", "c"]),
    ],
)
def test_every_eighth_fetch_asks_a_lower_queue_first_in_turn(
    fetch_number: int, expected: list[str]
) -> None:
    assert list(queue_order(["a", "b", "c"], fetch_number, 8)) == expected


def test_a_single_queue_or_no_rotation_keeps_the_order() -> None:
    assert list(queue_order(["a"], 7, 8)) == ["a"]
    assert list(queue_order(["a", "b"], 7, 0)) == ["a", "b"]


async def test_max_tasks_stops_the_worker_and_claims_no_more(handle: Handle) -> None:
    ran: list[int] = []

    @task
    async def item(n: int) -> None:
        ran.append(n)

    await dispatch_many([item(n) for n in range(5)])
    stats = await work(handle, tasks=[item], max_tasks=3, concurrency=10)
    assert sorted(ran) == [0, 1, 2]
    assert stats.succeeded == 3
    left = await sizes(handle)
    assert (left.ready, left.in_flight) == (2, 0)


async def test_a_fetch_claims_no_more_than_the_free_slots(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = await memory(handle)
    limits: list[int] = []
    original = driver.dequeue

    async def spy(queues: Sequence[str], *, limit: int, wait_seconds: float) -> list[Delivery]:
        limits.append(limit)
        return await original(queues, limit=limit, wait_seconds=wait_seconds)

    monkeypatch.setattr(driver, "dequeue", spy)
    running = 0
    most = 0

    @task
    async def busy() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1

    await dispatch_many([busy() for _ in range(12)])
    await work(handle, tasks=[busy], max_tasks=12, concurrency=3)
    assert most == 3
    assert max(limits) == 3
    assert all(limit >= 1 for limit in limits)


async def test_a_flooded_first_queue_does_not_starve_the_others(handle: Handle) -> None:
    order: list[str] = []

    @task
    async def record(label: str) -> None:
        order.append(label)

    await dispatch_many([record("high").on_queue("high") for _ in range(40)])
    await record("low").on_queue("low").dispatch()
    await work(handle, tasks=[record], queues=["high", "low"], max_tasks=41, concurrency=1)
    assert order.index("low") < 8
    assert order[0] == "high"
