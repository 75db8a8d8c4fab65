"""Fixtures for worker tests on the memory driver: a handle and a bounded worker run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import pytest

from asynctasq.drivers.memory import MemoryDriver
from asynctasq.drivers.protocol import DeadLetterEntry, QueueSizes
from asynctasq.handle import Handle, configured
from asynctasq.tasks import options
from asynctasq.tasks.registry import Registry, TaskSource
from asynctasq.worker import WorkerStats, run_worker

DEFAULTS = {"queue": "q", "retry_delay": 0, "retry_strategy": "fixed", "max_attempts": 3}


@pytest.fixture
async def handle() -> AsyncIterator[Handle]:
    async with configured(driver="memory", task_defaults=DEFAULTS) as opened:
        yield opened


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let tasks ask for leases down to 10 ms (users are held to 1 s).

    Lease expiry and renewal then run in a fraction of a second on the memory driver
    (which recovers expired leases every 0.05 s); the mechanics are the same at any scale.
    """
    monkeypatch.setattr(options, "MIN_VISIBILITY_TIMEOUT_SECONDS", 0.01)


async def work(
    handle: Handle, *, tasks: Registry | Iterable[TaskSource], **options: Any
) -> WorkerStats:
    """Run a worker on ``tasks`` (no signal handlers) with a 20 s safety limit."""
    options.setdefault("queues", ["q"])
    options.setdefault("concurrency", 4)
    with anyio.fail_after(20):
        return await run_worker(handle, tasks=tasks, handle_signals=False, **options)


async def memory(handle: Handle) -> MemoryDriver:
    driver = await handle.driver()
    assert isinstance(driver, MemoryDriver)
    return driver


async def sizes(handle: Handle, queue: str = "q") -> QueueSizes:
    return await (await memory(handle)).sizes(queue)


async def dead(handle: Handle, queue: str = "q") -> list[DeadLetterEntry]:
    return await (await memory(handle)).dead_letters(queue)
