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

    def queue(self) -> str:
        """Return a new queue name no other test uses."""
        name = f"t-{uuid.uuid4().hex[:16]}"
        self.queues.append(name)
        return name
