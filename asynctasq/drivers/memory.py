"""The in-process driver: every delivery rule of SPEC §4, kept in memory of one event loop.

For unit tests and for users' own tests. It behaves like the Redis driver: FIFO per queue,
delays, leases with a deadline of ``now + visibility timeout``, ``delivery_count`` raised on
each delivery, ``maintain()`` promoting due delayed messages (to the back of the queue) and
recovering expired leases (to the front), a dead-letter store per queue. Nothing survives
the process.

It also implements the optional monitoring protocols: ``DeadLetterStore``,
``QueueCatalog``, ``WorkerRegistry`` (workers of this process, expired by ``ttl_seconds`` on
its clock) and ``CompletedStore`` (the newest ``completed_limit`` completed tasks per queue).

The clock is injectable: ``MemoryDriver(clock=fake.now)`` with a test's own counter makes
delays and lease expiry deterministic. ``wait_seconds`` is always real event-loop time.

Example:
    >>> driver = MemoryDriver()

"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

import attrs

from asynctasq.config.records import Config
from asynctasq.drivers.protocol import (
    CompletedTask,
    DeadLetterEntry,
    Delivery,
    Outgoing,
    QueueSizes,
    WorkerInfo,
)

logger = logging.getLogger(__name__)


@attrs.define(eq=False)
class _Message:
    body: bytes
    visibility_timeout_seconds: float
    delivery_count: int = 0


@attrs.define(eq=False)
class _Queue:
    ready: deque[_Message] = attrs.field(factory=deque)
    delayed: list[tuple[float, int, _Message]] = attrs.field(factory=list)
    leased: dict[int, tuple[float, _Message]] = attrs.field(factory=dict)
    dead: list[tuple[DeadLetterEntry, float]] = attrs.field(factory=list)
    completed: deque[CompletedTask] = attrs.field(factory=deque)


class MemoryDriver:
    """A complete driver in the memory of the current process (also a ``DeadLetterStore``).

    Args:
        clock: seconds from any fixed origin, used for delays and lease deadlines
            (default ``time.monotonic``).
        maintenance_interval_seconds: how often a worker should call ``maintain()``.
        completed_limit: completed tasks kept per queue when ``keep_completed`` is called
            (the oldest are dropped beyond it).

    """

    name = "memory"
    max_message_bytes: int | None = None

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        maintenance_interval_seconds: float = 0.05,
        completed_limit: int = 1000,
    ) -> None:
        self.maintenance_interval_seconds: float | None = maintenance_interval_seconds
        self.completed_limit = completed_limit
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}
        self._clock = clock
        self._queues: dict[str, _Queue] = {}
        self._tokens = itertools.count(1)
        self._changed: asyncio.Event | None = None

    def _queue(self, name: str) -> _Queue:
        found = self._queues.get(name)
        if found is None:
            found = self._queues[name] = _Queue()
        return found

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _store(self, message: Outgoing, delivery_count: int = 0) -> None:
        item = _Message(message.body, message.visibility_timeout_seconds, delivery_count)
        queue = self._queue(message.queue)
        if message.delay_seconds > 0:
            due = self._clock() + message.delay_seconds
            heapq.heappush(queue.delayed, (due, next(self._tokens), item))
        else:
            queue.ready.append(item)
            self._notify()

    async def open(self) -> None:
        """Do nothing: there is no connection."""

    async def close(self) -> None:
        """Wake every waiting ``dequeue`` (which then returns what is ready, maybe ``[]``)."""
        self._notify()

    async def enqueue(self, message: Outgoing) -> None:
        """Store one message (ready at once, or delayed by ``message.delay_seconds``)."""
        self._store(message)

    async def enqueue_many(self, messages: Sequence[Outgoing]) -> None:
        """Store many messages, in order."""
        for message in messages:
            self._store(message)

    def _claim(self, queues: Sequence[str], limit: int) -> list[Delivery]:
        claimed: list[Delivery] = []
        now = self._clock()
        for name in queues:
            queue = self._queues.get(name)
            while queue is not None and queue.ready and len(claimed) < limit:
                item = queue.ready.popleft()
                item.delivery_count += 1
                token = next(self._tokens)
                queue.leased[token] = (now + item.visibility_timeout_seconds, item)
                claimed.append(
                    Delivery(
                        name, item.body, token, item.delivery_count, item.visibility_timeout_seconds
                    )
                )
        return claimed

    async def dequeue(
        self, queues: Sequence[str], *, limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Lease up to ``limit`` ready messages, earlier queues first.

        Waits on an ``asyncio.Event`` set by every enqueue, release and promotion, up to
        ``wait_seconds`` of real time, when nothing is ready; returns ``[]`` if still nothing.
        """
        if not queues or limit <= 0:
            return []
        claimed = self._claim(queues, limit)
        if claimed or wait_seconds <= 0:
            return claimed
        try:
            async with asyncio.timeout(wait_seconds):
                while not claimed:
                    if self._changed is None:
                        self._changed = asyncio.Event()
                    await self._changed.wait()
                    claimed = self._claim(queues, limit)
        except TimeoutError:
            pass
        return claimed

    def _take_lease(self, delivery: Delivery) -> _Message | None:
        queue = self._queues.get(delivery.queue)
        lease = None if queue is None else queue.leased.pop(delivery.receipt, None)
        return None if lease is None else lease[1]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Forget finished messages; a delivery whose lease was lost is skipped with a warning."""
        lost = sum(self._take_lease(delivery) is None for delivery in deliveries)
        if lost:
            logger.warning("ack: %d of %d leases were already lost", lost, len(deliveries))

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Put unfinished messages back at the front, in their order, undoing the count.

        The next delivery of a released message has the same ``delivery_count`` as the
        released one: releasing is not an attempt.
        """
        for delivery in reversed(deliveries):
            item = self._take_lease(delivery)
            if item is not None:
                item.delivery_count -= 1
                self._queue(delivery.queue).ready.appendleft(item)
        self._notify()

    async def retry(self, delivery: Delivery, message: Outgoing) -> None:
        """Store the next attempt and drop the lease in one step; nothing if the lease was lost.

        A lost lease means another consumer holds the message now, so storing the retry
        would run the task twice.
        """
        if self._take_lease(delivery) is None:
            logger.warning("retry: lease already lost on queue %r; not stored", delivery.queue)
            return
        self._store(message)

    async def dead_letter(self, delivery: Delivery, entry: DeadLetterEntry) -> None:
        """Keep ``entry`` in the queue's dead-letter store and drop the lease (if still held)."""
        item = self._take_lease(delivery)
        if item is None:
            logger.warning(
                "dead_letter: lease already lost on queue %r; not stored", delivery.queue
            )
            return
        self._queue(delivery.queue).dead.append((entry, item.visibility_timeout_seconds))

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Renew each held lease to ``now + visibility timeout``; lost leases stay lost."""
        now = self._clock()
        for delivery in deliveries:
            queue = self._queues.get(delivery.queue)
            lease = None if queue is None else queue.leased.get(delivery.receipt)
            if queue is not None and lease is not None:
                queue.leased[delivery.receipt] = (
                    now + delivery.visibility_timeout_seconds,
                    lease[1],
                )

    async def maintain(self, queues: Sequence[str]) -> float | None:
        """Promote due delayed messages (to the back) and recover expired leases (to the front).

        Recovered messages keep their raised ``delivery_count``, so the next delivery of a
        message whose consumer died reports one more. Returns the clock seconds until the
        earliest delayed message left is due, or ``None`` when none is delayed.
        """
        now = self._clock()
        woke = False
        soonest: float | None = None
        for name in queues:
            queue = self._queues.get(name)
            if queue is None:
                continue
            while queue.delayed and queue.delayed[0][0] <= now:
                queue.ready.append(heapq.heappop(queue.delayed)[2])
                woke = True
            if queue.delayed:
                wait = queue.delayed[0][0] - now
                soonest = wait if soonest is None else min(soonest, wait)
            expired = sorted(
                (deadline, token)
                for token, (deadline, _) in queue.leased.items()
                if deadline <= now
            )
            for _, token in reversed(expired):
                queue.ready.appendleft(queue.leased.pop(token)[1])
                woke = True
        if woke:
            self._notify()
        return soonest

    async def sizes(self, queue: str) -> QueueSizes:
        """Return ready, delayed, in-flight and dead-letter counts of ``queue``."""
        found = self._queues.get(queue) or _Queue()
        return QueueSizes(len(found.ready), len(found.delayed), len(found.leased), len(found.dead))

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first."""
        found = self._queues.get(queue)
        return [] if found is None else [entry for entry, _ in found.dead[:limit]]

    async def requeue_dead(
        self,
        queue: str,
        task_ids: Sequence[str] | None = None,
        *,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> int:
        """Move dead letters (all, or those with the given task ids) back to the ready queue.

        They go to the back of the queue as fresh messages (``delivery_count`` starts again),
        with the body ``rewrite(body)`` returns when ``rewrite`` is given (an entry it raises
        for stays dead-lettered, logged).
        """
        found = self._queues.get(queue)
        if found is None:
            return 0
        wanted = None if task_ids is None else set(task_ids)
        moving: list[tuple[bytes, float]] = []
        keeping: list[tuple[DeadLetterEntry, float]] = []
        for entry, vt in found.dead:
            if wanted is not None and entry.task_id not in wanted:
                keeping.append((entry, vt))
                continue
            try:
                body = entry.body if rewrite is None else rewrite(entry.body)
            except Exception as exc:
                logger.warning("requeue: dead letter %r kept: %s", entry.task_id, exc)
                keeping.append((entry, vt))
                continue
            moving.append((body, vt))
        found.dead = keeping
        for body, vt in moving:
            self._store(Outgoing(queue, body, visibility_timeout_seconds=vt))
        return len(moving)

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were."""
        found = self._queues.get(queue)
        if found is None:
            return 0
        count = len(found.dead)
        found.dead = []
        return count

    async def queue_names(self) -> list[str]:
        """Return the queues holding anything (ready, delayed, leased, dead or completed)."""
        return sorted(
            name
            for name, q in self._queues.items()
            if q.ready or q.delayed or q.leased or q.dead or q.completed
        )

    async def record_heartbeat(self, worker: WorkerInfo, *, ttl_seconds: float) -> None:
        """Keep ``worker`` (``last_heartbeat`` = ``time.time()``) for ``ttl_seconds``."""
        stamped = attrs.evolve(worker, last_heartbeat=time.time())
        self._workers[worker.worker_id] = (stamped, self._clock() + ttl_seconds)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget ``worker_id``."""
        self._workers.pop(worker_id, None)

    async def live_workers(self) -> list[WorkerInfo]:
        """Return the workers whose ttl has not passed, by worker id (expired ones dropped)."""
        now = self._clock()
        for worker_id in [k for k, (_, until) in self._workers.items() if until <= now]:
            del self._workers[worker_id]
        return [info for _, (info, _) in sorted(self._workers.items())]

    async def keep_completed(self, tasks: Sequence[CompletedTask]) -> None:
        """Keep ``tasks``, at most ``completed_limit`` per queue (the oldest dropped)."""
        for completed in tasks:
            kept = self._queue(completed.queue).completed
            kept.appendleft(completed)
            while len(kept) > self.completed_limit:
                kept.pop()

    async def completed_tasks(self, queue: str, *, limit: int = 100) -> list[CompletedTask]:
        """Return up to ``limit`` kept completed tasks of ``queue``, newest first."""
        found = self._queues.get(queue)
        return [] if found is None or limit <= 0 else list(itertools.islice(found.completed, limit))

    async def completed_count(self, queue: str) -> int:
        """Return how many completed tasks of ``queue`` are kept."""
        found = self._queues.get(queue)
        return 0 if found is None else len(found.completed)


def build(config: Config) -> MemoryDriver:
    """Return a new, empty memory driver (it has no configuration group)."""
    del config
    return MemoryDriver()
