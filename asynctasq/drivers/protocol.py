"""The driver protocol: the few broker operations the worker and dispatch need.

A driver moves opaque message bytes; it never decodes a task and never decides a retry.
Every method translates its client's exceptions into :class:`~asynctasq.errors.DriverError`
at the edge, raised ``from`` the original, with passwords removed.

Delivery semantics every driver provides (SPEC §4): at-least-once. A dequeued message is
invisible to other consumers until it is acked, retried, dead-lettered or released, or
until its visibility timeout passes without an ``extend``; then it is delivered again with
``delivery_count`` one higher.

Optional attribute, read with ``getattr``: ``pool_size: int | None``, the most connections
the driver's pool holds for ordinary calls (``None`` or absent: unbounded or not pooled).
The worker warns at start when it is smaller than its concurrency plus its own loops need
(FIELD-CASES C35).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs


@attrs.frozen
class Outgoing:
    """A message to enqueue.

    Attributes:
        queue: queue name.
        body: the encoded task message.
        delay_seconds: not deliverable before ``now + delay_seconds`` (broker clock where the
            broker has one); 0 means at once.
        visibility_timeout_seconds: lease length once delivered; renewed by ``extend``.
        task_id: the task id inside ``body``, for drivers that index or deduplicate by it.

    """

    queue: str
    body: bytes
    delay_seconds: float = 0.0
    visibility_timeout_seconds: float = 3600.0
    task_id: str = ""


@attrs.frozen
class Delivery:
    """One message handed to a consumer.

    Attributes:
        queue: the queue it came from.
        body: the encoded task message exactly as enqueued.
        receipt: the driver's own token for ack/retry/extend (opaque to callers).
        delivery_count: how many times this body has been delivered, this time included
            (1 on the first delivery; higher after a crashed consumer's lease expired).
        visibility_timeout_seconds: the lease length ``extend`` renews.

    """

    queue: str
    body: bytes
    receipt: Any = attrs.field(eq=False, repr=False)
    delivery_count: int = 1
    visibility_timeout_seconds: float = 3600.0


@attrs.frozen
class DeadLetterEntry:
    """What the dead-letter store keeps for a task that will not run again.

    Attributes:
        queue: the queue the task was on.
        body: the last encoded message (so it can be requeued).
        task_id: the task id, or ``""`` when the body could not be decoded.
        task_name: the registered task name, or ``""`` when unknown.
        error_type: the exception class name, e.g. ``"ValueError"`` or ``"TaskNotFoundError"``.
        error_message: the exception message or the reason, e.g. "unknown task 'x.y'".
        attempts: executions counted for the task.
        failed_at: when it was dead-lettered, epoch seconds (UTC).

    """

    queue: str
    body: bytes
    task_id: str
    task_name: str
    error_type: str
    error_message: str
    attempts: int
    failed_at: float


@attrs.frozen
class QueueSizes:
    """Message counts of one queue: ready, delayed, in flight (leased) and dead-lettered."""

    ready: int
    delayed: int
    in_flight: int
    dead: int


@runtime_checkable
class Driver(Protocol):
    """A broker behind the calls asynctasq needs. Built by ``build_driver(config)``."""

    name: str
    """The driver name as in ``Config.driver``, e.g. ``"redis"``."""

    maintenance_interval_seconds: float | None
    """How often the worker should call :meth:`maintain`; ``None`` if never needed."""

    max_message_bytes: int | None
    """The largest body the broker accepts, or ``None`` for no fixed limit."""

    async def open(self) -> None:
        """Connect (idempotent). Raises DriverError if the broker cannot be reached."""

    async def close(self) -> None:
        """Release every connection (idempotent)."""

    async def enqueue(self, message: Outgoing) -> None:
        """Store one message durably before returning."""

    async def enqueue_many(self, messages: Sequence[Outgoing]) -> None:
        """Store many messages, in as few broker round trips as the broker allows."""

    async def dequeue(
        self, queues: Sequence[str], *, limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Lease up to ``limit`` ready messages, earlier queues first.

        Waits up to ``wait_seconds`` (with the broker's blocking read or notification, not
        a sleep loop) when nothing is ready; returns ``[]`` if still nothing.
        """

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove finished messages. A delivery whose lease was lost is skipped, not an error."""

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Make unfinished messages deliverable again at once (shutdown), without a new attempt.

        They are served next, in their order. Their next delivery reports the same
        ``delivery_count`` as this one: a release is not counted as a delivery.
        """

    async def retry(self, delivery: Delivery, message: Outgoing) -> None:
        """Store ``message`` (the next attempt) and remove ``delivery``, the store first.

        Atomic where the broker allows; otherwise a crash in between may duplicate the task,
        never lose it. If the lease was already lost (another consumer holds the message
        now), nothing is stored and a warning is logged.
        """

    async def dead_letter(self, delivery: Delivery, entry: DeadLetterEntry) -> None:
        """Store ``entry`` in the queue's dead-letter store, then remove ``delivery``.

        As with :meth:`retry`, nothing is stored when the lease was already lost.
        """

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Renew each delivery's lease to ``now + delivery.visibility_timeout_seconds``.

        A lease already lost stays lost (logged), so a message is never held twice.
        """

    async def maintain(self, queues: Sequence[str]) -> None:
        """Promote due delayed messages and recover expired leases (each exactly once).

        Safe to call from every worker at once. Recovered messages keep their raised count,
        so their next delivery reports one more.
        """

    async def sizes(self, queue: str) -> QueueSizes:
        """Return the queue's message counts."""


@runtime_checkable
class DeadLetterStore(Protocol):
    """Optional inspection of dead letters, for the CLI and dashboards (not for the worker)."""

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead-lettered entries of ``queue``, oldest first."""

    async def requeue_dead(self, queue: str, task_ids: Sequence[str] | None = None) -> int:
        """Move dead letters back to the ready queue; ``None`` means all. Returns the count."""

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``. Returns the count."""
