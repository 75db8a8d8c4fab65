"""Broker errors are logged and retried; no task is lost (FIELD-CASES C08, C09, C15)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asynctasq.errors import DriverError
from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many, task
from asynctasq.worker.recovery import MAX_PAUSE_SECONDS, pause_seconds
from tests.unit.worker.conftest import dead, memory, sizes, work

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("failures", [1, 2, 46, 47, 64, 1024, 1025, 10**6])
def test_the_pause_saturates_at_the_cap_for_any_failure_count(failures: int) -> None:
    pause = pause_seconds(failures)
    assert 0.1 <= pause <= MAX_PAUSE_SECONDS


def flaky(monkeypatch: pytest.MonkeyPatch, driver: Any, name: str, failures: int) -> list[int]:
    """Make ``driver.<name>`` raise DriverError on its first ``failures`` calls."""
    calls: list[int] = []
    original: Callable[..., Awaitable[Any]] = getattr(driver, name)

    async def sometimes(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= failures:
            raise DriverError("memory", name, "injected outage")
        return await original(*args, **kwargs)

    monkeypatch.setattr(driver, name, sometimes)
    return calls


async def test_fetch_ack_and_maintenance_errors_do_not_stop_the_worker(
    handle: Handle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    done: list[int] = []

    @task
    async def item(n: int) -> None:
        done.append(n)

    await dispatch_many([item(n) for n in range(6)])
    driver = await memory(handle)
    flaky(monkeypatch, driver, "dequeue", 2)
    flaky(monkeypatch, driver, "ack", 2)
    flaky(monkeypatch, driver, "maintain", 3)
    stats = await work(handle, tasks=[item], max_tasks=6)
    assert sorted(done) == list(range(6))
    assert stats.succeeded == 6
    left = await sizes(handle)
    assert (left.ready, left.in_flight) == (0, 0)
    assert "injected outage" in caplog.text


async def test_a_failing_retry_call_is_repeated_until_the_retry_is_stored(
    handle: Handle, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    @task(max_attempts=2)
    async def failing() -> None:
        runs.append(1)
        raise ValueError("task error")

    await failing().dispatch()
    driver = await memory(handle)
    retry_calls = flaky(monkeypatch, driver, "retry", 2)
    dead_calls = flaky(monkeypatch, driver, "dead_letter", 1)
    await work(handle, tasks=[failing], max_tasks=2)
    assert runs == [1, 1]
    assert len(retry_calls) == 3
    assert len(dead_calls) == 2
    assert [e.error_type for e in await dead(handle)] == ["ValueError"]


async def test_tasks_finishing_during_a_slow_ack_are_not_counted_as_ack_failures(
    handle: Handle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Acks queued while an ack call is in flight go in the next call, with no back-off."""
    sleeps: list[int] = []  # the flusher's back-offs
    ack_sizes: list[int] = []

    @task
    async def item(n: int) -> None:
        await anyio.lowlevel.checkpoint()

    await dispatch_many([item(n) for n in range(40)])
    driver = await memory(handle)
    original = driver.ack

    async def slow_ack(deliveries: Any) -> None:
        ack_sizes.append(len(deliveries))
        await anyio.sleep(0.01)  # other tasks finish meanwhile
        await original(deliveries)

    def noted_pause(failures: int) -> float:
        sleeps.append(failures)
        return pause_seconds(failures)

    monkeypatch.setattr(driver, "ack", slow_ack)
    monkeypatch.setattr("asynctasq.worker.settle.pause_seconds", noted_pause)
    stats = await work(handle, tasks=[item], max_tasks=40, concurrency=8)
    assert stats.succeeded == 40
    assert sum(ack_sizes) == 40
    assert len(ack_sizes) > 1  # acks did pile up behind a call
    assert sleeps == []
    assert "acks work again" not in caplog.text
