"""Where an idle SQL ``dequeue`` waits: a notification, or a poll with adaptive back-off.

PostgreSQL wakes waiters with LISTEN/NOTIFY (its connector calls :meth:`Wakeup.notify`
for each notification and clears :attr:`Wakeup.polling` while its listening connection
works). MySQL and SQLite have no such channel: a waiter then sleeps
:data:`MIN_POLL_SECONDS`, doubling after every empty look up to :data:`MAX_POLL_SECONDS`,
and back to the minimum as soon as a claim finds work. Within one process, every
enqueue, retry and release through the same driver also wakes its waiters at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterator

MIN_POLL_SECONDS = 0.01
"""The first pause of an idle poll, and the pause after a claim found work."""

MAX_POLL_SECONDS = 0.5
"""The longest pause between two polls: the most a poll adds to a task's start latency."""


class Watch:
    """One waiting ``dequeue``: woken for any of its queues, or after a pause."""

    def __init__(self, wakeup: Wakeup, queues: Collection[str]) -> None:
        self.queues = frozenset(queues)
        self.event = asyncio.Event()
        self._wakeup = wakeup

    async def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` (capped by the poll interval when polling) or a wake-up."""
        if self._wakeup.polling:
            seconds = min(seconds, self._wakeup.next_poll())
        if not self.event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(seconds, 0.0)):
                    await self.event.wait()
        self.event.clear()


class Wakeup:
    """The waiting ``dequeue`` calls of one driver and how they are woken.

    Args:
        min_poll_seconds: the first pause of an idle poll.
        max_poll_seconds: the longest pause between polls.

    """

    def __init__(
        self,
        *,
        min_poll_seconds: float = MIN_POLL_SECONDS,
        max_poll_seconds: float = MAX_POLL_SECONDS,
    ) -> None:
        self.polling = True
        """True unless a server notification channel is listening (PostgreSQL)."""
        self._min = min_poll_seconds
        self._max = max_poll_seconds
        self._poll = min_poll_seconds
        self._watches: set[Watch] = set()

    def next_poll(self) -> float:
        """Return the pause before the next poll and double the one after (up to the max)."""
        pause = self._poll
        self._poll = min(self._poll * 2, self._max)
        return pause

    def worked(self) -> None:
        """A claim found work: poll again at the shortest interval."""
        self._poll = self._min

    def notify(self, queue: str | None = None) -> None:
        """Wake the waiters on ``queue`` (``None``: every waiter)."""
        for watch in self._watches:
            if queue is None or queue in watch.queues:
                watch.event.set()

    @contextlib.contextmanager
    def watch(self, queues: Collection[str]) -> Iterator[Watch]:
        """Register a waiter on ``queues`` for the block.

        Register before the first claim, so a notification that arrives between that
        claim and the wait is not missed.
        """
        found = Watch(self, queues)
        self._watches.add(found)
        try:
            yield found
        finally:
            self._watches.discard(found)
