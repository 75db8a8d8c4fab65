"""Broker errors are logged and retried; no task is lost (FIELD-CASES C08, C09, C15)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from asynctasq.errors import DriverError
from asynctasq.handle import Handle
from asynctasq.tasks import dispatch_many, task
from asynctasq.worker import Shutdown
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


@pytest.mark.usefixtures("short_leases")
async def test_an_ack_outage_longer_than_the_lease_still_acks_the_finished_task(
    handle: Handle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed acks are kept past the lease: the driver skips them only if the task was
    handed out again. Dropping them at the lease's end made every finished task run again."""
    runs: list[int] = []
    third_failure = asyncio.Event()
    acked = asyncio.Event()
    down = {"ack": True, "extend": True, "maintain": True, "dequeue": True}
    ack_failures: list[int] = []

    @task
    async def done() -> None:
        runs.append(1)

    driver = await memory(handle)
    for name in down:
        original: Callable[..., Awaitable[Any]] = getattr(driver, name)

        def outage(name: str = name, original: Callable[..., Awaitable[Any]] = original) -> Any:
            async def call(*args: Any, **kwargs: Any) -> Any:
                if down[name]:
                    if name == "ack":
                        ack_failures.append(1)
                        if len(ack_failures) == 3:  # 0.3 s after the first: past the lease
                            down["ack"] = False
                            third_failure.set()
                    raise DriverError("memory", name, "injected outage")
                result = await original(*args, **kwargs)
                if name == "ack":
                    acked.set()
                return result

            return call

        if name != "dequeue":
            monkeypatch.setattr(driver, name, outage())
    await done().visibility_timeout(0.2).dispatch()
    shutdown = Shutdown()
    worker = asyncio.get_running_loop().create_task(
        work(handle, tasks=[done], shutdown=shutdown, wait_seconds=0.01)
    )
    await third_failure.wait()
    monkeypatch.setattr(driver, "dequeue", outage("dequeue"))  # nobody takes it meanwhile
    with anyio.fail_after(10):  # before the fix the ack was dropped: this never came
        await acked.wait()
    down["extend"] = down["maintain"] = down["dequeue"] = False
    shutdown.request()
    stats = await worker
    assert runs == [1]
    assert stats.succeeded == 1
    left = await sizes(handle)
    assert (left.ready, left.in_flight) == (0, 0)
    assert "ack of 1 tasks failed (3 in a row)" in caplog.text
    assert "acks work again after 3 failures" in caplog.text
    assert "lease renewal of 1 deliveries failed (2 in a row)" in caplog.text
