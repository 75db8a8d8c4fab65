"""The one log line per task outcome says what happened, how long it ran, and what follows."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import pytest

from asynctasq.drivers.protocol import Delivery
from asynctasq.errors import DriverError
from asynctasq.handle import Handle
from asynctasq.tasks import current_task, task
from tests.unit.worker.conftest import memory, work

pytestmark = pytest.mark.anyio


def task_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "asynctasq.task"]


async def test_a_retry_line_says_how_long_it_ran_why_and_when_it_runs_again(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    @task(max_attempts=2, retry_delay=0)
    async def flaky() -> None:
        info = current_task()
        assert info is not None
        raise RuntimeError(f"boom {info.attempt}")

    task_id = await flaky().retry_after(0.01).correlation_id("order-7").dispatch()
    with caplog.at_level(logging.INFO, logger="asynctasq.task"):
        await work(handle, tasks=[flaky], max_tasks=2)
    retried, dead = task_lines(caplog)
    head = f"task {task_id} {flaky.name} queue=q correlation_id=order-7 "
    assert re.fullmatch(
        re.escape(head) + r"attempt 1/2 failed after \d+\.\d ms \(RuntimeError: boom 1\); "
        r"retrying in 0\.01 s",
        retried,
    ), retried
    assert re.fullmatch(
        re.escape(head) + r"attempt 2/2 failed after \d+\.\d ms \(RuntimeError: boom 2\); "
        r"dead-lettered: max attempts \(2\) reached",
        dead,
    ), dead


async def test_a_success_line_has_no_correlation_id_when_none_was_set(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    @task
    async def fine() -> None:
        return None

    task_id = await fine().dispatch()
    with caplog.at_level(logging.INFO, logger="asynctasq.task"):
        await work(handle, tasks=[fine], max_tasks=1)
    [line] = task_lines(caplog)
    assert re.fullmatch(
        re.escape(f"task {task_id} {fine.name} queue=q attempt 1/3 succeeded in ") + r"\d+\.\d ms",
        line,
    ), line


async def test_a_retry_without_delay_says_it_runs_again_at_once(
    handle: Handle, caplog: pytest.LogCaptureFixture
) -> None:
    @task(max_attempts=2, retry_delay=0)
    async def once() -> None:
        info = current_task()
        assert info is not None
        if info.attempt == 1:
            raise KeyError("k")

    await once().dispatch()
    with caplog.at_level(logging.INFO, logger="asynctasq.task"):
        await work(handle, tasks=[once], max_tasks=2)
    assert task_lines(caplog)[0].endswith("(KeyError: 'k'); retrying at once")


async def test_acks_that_work_again_after_failing_are_logged(
    handle: Handle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    @task
    async def fine() -> None:
        return None

    driver = await memory(handle)
    original = driver.ack
    failures = [DriverError("memory", "ack", "down for a moment")]

    async def flaky_ack(deliveries: Sequence[Delivery]) -> None:
        if failures:
            raise failures.pop()
        await original(deliveries)

    monkeypatch.setattr(driver, "ack", flaky_ack)
    await fine().dispatch()
    with caplog.at_level(logging.WARNING, logger="asynctasq.worker"):
        stats = await work(handle, tasks=[fine], max_tasks=1)
    assert stats.succeeded == 1
    assert "ack of 1 tasks failed (1 in a row)" in caplog.text
    assert "acks work again after 1 failures" in caplog.text
