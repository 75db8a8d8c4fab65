"""What the ``broker`` fixture yields: an opened driver and the queues a test made."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import attrs

from asynctasq.drivers.protocol import Driver


@attrs.define
class Broker:
    """An opened driver and the queue names a test made (removed afterwards)."""

    name: str
    driver: Driver
    queues: list[str] = attrs.field(factory=list)
    released_to_front: bool = True
    """Whether ``release`` puts messages back at the front (SQS: re-sent copies go last)."""
    lose_leases: Callable[[], Awaitable[None]] | None = None
    """``None`` when an unacked delivery comes back once its visibility timeout passed.
    Otherwise (RabbitMQ: a delivery is held until the consumer's channel closes) this ends
    the driver's hold on every delivery it has, the way a crash or a dropped connection does."""

    def queue(self) -> str:
        """Return a new queue name no other test uses."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.queues.append(name)
        return name
