"""Fixtures for task tests: a memory-driver handle and a way to read what was enqueued."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from asynctasq.drivers.protocol import Delivery
from asynctasq.handle import Handle, configured
from asynctasq.message import TaskMessage, decode


@pytest.fixture
async def handle() -> AsyncIterator[Handle]:
    async with configured(driver="memory") as opened:
        yield opened


async def enqueued(handle: Handle, *queues: str) -> list[TaskMessage]:
    """Take every ready message off ``queues`` (memory driver) and decode it."""
    driver = await handle.driver()
    deliveries: list[Delivery] = await driver.dequeue(queues, limit=1000, wait_seconds=0)
    return [decode(delivery.body) for delivery in deliveries]
