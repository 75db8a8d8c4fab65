"""Delayed tasks and delayed retries are promoted when due, not up to an interval later."""

from __future__ import annotations

import pytest

from asynctasq.config.records import MAX_DELAY_SECONDS
from asynctasq.drivers.memory import MemoryDriver
from asynctasq.drivers.protocol import Delivery, Outgoing
from asynctasq.handle import Handle
from asynctasq.message import TaskMessage, encode
from asynctasq.tasks import current_task, task
from asynctasq.worker.maintain import MIN_PAUSE_SECONDS, pause_before_next
from tests.unit.worker.conftest import memory, work

pytestmark = pytest.mark.anyio

LONG_INTERVAL = 600.0
"""A maintenance interval far beyond the test's 20 s limit: only precise wake-ups pass."""


@pytest.mark.parametrize(
    ("next_due", "pause"),
    [
        (None, 1.0),
        (0.25, 0.25),
        (5.0, 1.0),
        (0.0, MIN_PAUSE_SECONDS),
        (-3.0, MIN_PAUSE_SECONDS),
        (float("nan"), 1.0),
    ],
)
def test_the_next_maintenance_call_is_when_the_next_delayed_message_is_due(
    next_due: float | None, pause: float
) -> None:
    assert pause_before_next(1.0, next_due) == pause


async def test_the_memory_driver_says_when_its_next_delayed_message_is_due() -> None:
    now = [100.0]
    driver = MemoryDriver(clock=lambda: now[0])
    assert await driver.maintain(["a", "b"]) is None
    await driver.enqueue(Outgoing("a", b"x", delay_seconds=30))
    await driver.enqueue(Outgoing("b", b"y", delay_seconds=10))
    assert await driver.maintain(["a", "b"]) == 10.0
    now[0] = 110.0
    assert await driver.maintain(["a", "b"]) == 20.0
    assert (await driver.sizes("b")).ready == 1
    now[0] = 130.0
    assert await driver.maintain(["a"]) is None


async def test_a_delayed_task_runs_when_due_even_with_a_long_maintenance_interval(
    handle: Handle,
) -> None:
    ran: list[str] = []

    @task
    async def later() -> None:
        ran.append("later")

    driver = await memory(handle)
    driver.maintenance_interval_seconds = LONG_INTERVAL
    await later().delay(0.05).dispatch()
    await work(handle, tasks=[later], max_tasks=1)
    assert ran == ["later"]


async def test_a_delayed_retry_runs_when_due_even_with_a_long_maintenance_interval(
    handle: Handle,
) -> None:
    attempts: list[int] = []

    @task(retry_delay=0, max_attempts=2)
    async def flaky() -> None:
        info = current_task()
        assert info is not None
        attempts.append(info.attempt)
        if info.attempt == 1:
            raise RuntimeError("first attempt fails")

    driver = await memory(handle)
    driver.maintenance_interval_seconds = LONG_INTERVAL
    await flaky().retry_after(0.05).dispatch()
    stats = await work(handle, tasks=[flaky], max_tasks=2)
    assert attempts == [1, 2]
    assert (stats.retried, stats.succeeded) == (1, 1)


async def test_a_retry_delay_and_lease_over_365_days_from_elsewhere_are_cut_to_it(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Dispatch refuses them; a message another producer wrote may still carry them, and
    # MySQL refused such a retry (DATETIME overflow) on every try until the lease expired.
    stored: list[Outgoing] = []

    @task
    async def failing() -> None:
        raise RuntimeError("fails")

    message = TaskMessage(
        task_id="t-1",
        task_name=failing.name,
        args=(),
        kwargs={},
        queue="q",
        attempt=1,
        max_attempts=2,
        retry_strategy="fixed",
        retry_delay_seconds=1e12,
        timeout_seconds=None,
        visibility_timeout_seconds=1e12,
        correlation_id=None,
        dispatched_at=0.0,
        mode="async",
    )
    driver = await memory(handle)
    original = driver.retry

    async def noted(delivery: Delivery, outgoing: Outgoing) -> None:
        stored.append(outgoing)
        await original(delivery, outgoing)

    monkeypatch.setattr(driver, "retry", noted)
    await driver.enqueue(Outgoing("q", encode(message), visibility_timeout_seconds=60))
    stats = await work(handle, tasks=[failing], max_tasks=1)
    assert stats.retried == 1
    [retry] = stored
    assert retry.delay_seconds == MAX_DELAY_SECONDS
    assert retry.visibility_timeout_seconds == MAX_DELAY_SECONDS
    assert (await driver.sizes("q")).delayed == 1
