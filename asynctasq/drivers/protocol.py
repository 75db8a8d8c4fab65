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

Optional protocols, for monitoring and the CLI (never needed to run tasks; a driver lacking
one makes only that feature report that it is not supported):

* :class:`DeadLetterStore`: list, requeue (with a body rewrite, so the attempt count can be
  reset) and purge dead letters;
* :class:`QueueCatalog`: the names of the queues the broker holds;
* :class:`WorkerRegistry`: live workers and their last heartbeat;
* :class:`CompletedStore`: completed tasks kept when ``repository.keep_completed_tasks`` is
  on, bounded where the broker cannot query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


MAX_TASK_ID_BYTES = 255
"""The longest ``task_id`` of a :class:`DeadLetterEntry` the worker hands over, UTF-8 bytes."""

MAX_TASK_NAME_BYTES = 1024
"""The longest ``task_name`` of a :class:`DeadLetterEntry` the worker hands over, UTF-8 bytes."""

MAX_ERROR_TYPE_BYTES = 255
"""The longest ``error_type`` of a :class:`DeadLetterEntry` the worker hands over, UTF-8 bytes."""

MAX_ERROR_MESSAGE_BYTES = 16_384
"""The longest ``error_message`` of a :class:`DeadLetterEntry` the worker hands over, UTF-8 bytes.

These limits fit every driver's store (MySQL: ``VARCHAR(255)``, ``VARCHAR(1024)`` and a
``TEXT`` of 65,535 bytes; SQS: the 256 KiB message with the body beside it; RabbitMQ: one
header frame), so a dead letter is never refused for its text.
"""


@attrs.frozen
class DeadLetterEntry:
    r"""What the dead-letter store keeps for a task that will not run again.

    The worker bounds the text fields (:data:`MAX_TASK_ID_BYTES`, :data:`MAX_TASK_NAME_BYTES`,
    :data:`MAX_ERROR_TYPE_BYTES`, :data:`MAX_ERROR_MESSAGE_BYTES`; longer text keeps its
    beginning and ends with ``... [cut, N bytes in all]``) and makes them storable anywhere:
    valid UTF-8 (unpaired surrogates written as ``\udcff``), no NUL (written as ``\x00``).

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


@attrs.frozen
class WorkerInfo:
    """A worker as its heartbeat records it.

    Attributes:
        worker_id: ``hostname-pid-xxxxxx``.
        hostname: the machine's host name.
        pid: the worker's process id.
        queues: the queues it serves, highest priority first.
        concurrency: the most tasks it runs at once.
        driver: the driver name it consumes from.
        started_at: when it started, epoch seconds (UTC).
        last_heartbeat: when the store last recorded it, epoch seconds (UTC; the broker's
            clock where it has one); set by the store, ``0.0`` when passed in.
        active: executions running at the heartbeat.
        processed: deliveries it took to an end (completed + retried + dead-lettered).
        failed: deliveries that ended in an error: retried or dead-lettered (also those
            that could not run: unknown task, undecodable payload); ``processed - failed``
            is the completed count.

    """

    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    driver: str
    started_at: float
    last_heartbeat: float = 0.0
    active: int = 0
    processed: int = 0
    failed: int = 0


@attrs.frozen
class CompletedTask:
    """A completed task kept for history (``repository.keep_completed_tasks``).

    Attributes:
        queue: the queue it ran from.
        task_id: the task id.
        task_name: the registered task name.
        attempt: the execution that completed it (1 for the first).
        worker_id: the worker that ran it.
        dispatched_at: when it was dispatched, epoch seconds (UTC).
        started_at: when the completing execution began, epoch seconds (UTC).
        completed_at: when it ended, epoch seconds (UTC).
        duration_ms: how long the completing execution ran, milliseconds.
        status: always ``"completed"`` (a stable field for stores that keep other states).

    """

    queue: str
    task_id: str
    task_name: str
    attempt: int
    worker_id: str
    dispatched_at: float
    started_at: float
    completed_at: float
    duration_ms: float
    status: str = "completed"


@runtime_checkable
class Driver(Protocol):
    """A broker behind the calls asynctasq needs. Built by ``build_driver(config)``."""

    name: str
    """The driver name as in ``Config.driver``, e.g. ``"redis"``."""

    maintenance_interval_seconds: float | None
    """How often the worker should call :meth:`maintain`; ``None`` if never needed."""

    @property
    def max_message_bytes(self) -> int | None:
        """The largest body the broker accepts, or ``None`` for no fixed limit (read-only)."""

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
        """Remove finished messages. A delivery whose lease was lost is skipped, not an error.

        The worker repeats a failed ack for as long as it runs, also after the lease
        expired (an outage longer than the visibility timeout), so a late ack must be safe:
        a message handed to another consumer since is never removed by the old delivery
        (SQL: the lease token; Redis: the exact in-flight member; RabbitMQ: never another
        channel's delivery tag; SQS: no stale receipt handle), while one nobody took yet
        may be removed — the task did finish.
        """

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

    async def maintain(self, queues: Sequence[str]) -> float | None:
        """Promote due delayed messages and recover expired leases (each exactly once).

        Safe to call from every worker at once. Recovered messages keep their raised count,
        so their next delivery reports one more.

        Returns the seconds until the earliest delayed message of ``queues`` is due (> 0),
        so the worker can call again right then instead of up to an interval late; or
        ``None`` when none is delayed or the driver cannot tell (the worker then waits
        ``maintenance_interval_seconds``). A driver returning ``None`` is always correct.
        """

    async def sizes(self, queue: str) -> QueueSizes:
        """Return the queue's message counts."""


@runtime_checkable
class DeadLetterStore(Protocol):
    """Optional inspection of dead letters, for the CLI and dashboards (not for the worker)."""

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead-lettered entries of ``queue``, oldest first."""

    async def requeue_dead(
        self,
        queue: str,
        task_ids: Sequence[str] | None = None,
        *,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> int:
        """Move dead letters back to the ready queue; ``None`` means all. Returns the count.

        ``rewrite(body)`` (when given) returns the body to store instead, e.g. the message
        with its attempt count reset; it is called before anything moves, and an entry it
        raises for stays dead-lettered. Each entry leaves the store and enters the queue in
        one step (or, where the broker cannot, is enqueued first: a crash may duplicate it,
        never lose it).
        """

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``. Returns the count."""


@runtime_checkable
class QueueCatalog(Protocol):
    """Optional: the queues a broker holds, for ``asynctasq stats`` without ``--queues``."""

    async def queue_names(self) -> list[str]:
        """Return the names of the queues with anything stored (any state), sorted."""


@runtime_checkable
class WorkerRegistry(Protocol):
    """Optional: live workers and their last heartbeat, for monitoring.

    The worker calls :meth:`record_heartbeat` when it starts and every
    ``events.heartbeat_interval`` seconds, and :meth:`remove_worker` when it stops. A
    worker that died without stopping disappears once ``ttl_seconds`` passed since its last
    heartbeat.
    """

    async def record_heartbeat(self, worker: WorkerInfo, *, ttl_seconds: float) -> None:
        """Store ``worker`` with ``last_heartbeat`` = now; live for ``ttl_seconds``."""

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a stopped worker (nothing if unknown)."""

    async def live_workers(self) -> list[WorkerInfo]:
        """Return the workers whose last heartbeat is within its ttl, by worker id."""


@runtime_checkable
class CompletedStore(Protocol):
    """Optional: completed tasks kept when ``repository.keep_completed_tasks`` is on.

    The worker calls :meth:`keep_completed` after acking, with the acked tasks. Stores that
    cannot be queried cheaply keep a bounded number per queue (newest kept).
    """

    async def keep_completed(self, tasks: Sequence[CompletedTask]) -> None:
        """Record ``tasks`` as completed (dropping the oldest beyond the store's bound)."""

    async def completed_tasks(self, queue: str, *, limit: int = 100) -> list[CompletedTask]:
        """Return up to ``limit`` kept completed tasks of ``queue``, newest first."""

    async def completed_count(self, queue: str) -> int:
        """Return how many completed tasks of ``queue`` are kept."""
