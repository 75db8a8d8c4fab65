"""What the ``broker`` fixture yields: an opened driver and the queues a test made."""

from __future__ import annotations

import uuid

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
    bulk_messages: int = 2000
    """Messages of the bulk tests (moto's SQS slows down quadratically with queue length)."""

    def queue(self) -> str:
        """Return a new queue name no other test uses."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.queues.append(name)
        return name
