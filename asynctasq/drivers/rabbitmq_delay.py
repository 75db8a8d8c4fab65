"""Delayed messages: held in ``{queue}_delayed`` and released by ``maintain`` when due.

Why not per-message TTL with a dead-letter exchange back to the queue: RabbitMQ expires
messages only at the head of a queue, so a long delay at the head would hold back every
shorter delay behind it (head-of-line blocking). Instead each delayed message carries its
due time (``x-asynctasq-due-ms``, the publisher's wall clock) and a *scan* releases the due
ones:

1. open a channel and consume ``{queue}_delayed`` with a prefetch of :data:`SCAN_LIMIT`:
   the broker pushes the queue's messages, which stay unacked, so no other scanner (another
   worker's ``maintain``) sees them meanwhile — each message is released by one scanner;
2. collect them until as many arrived as the queue held when the scan began, or none came
   for :data:`QUIET_SECONDS` (another scanner holds the rest);
3. publish a ready copy of every due one to the queue (same count, with confirms), then ack
   the delayed originals. A crash between the two may release a message twice, never lose
   it;
4. close the channel: every message not yet due goes back to its old place, untouched
   (not requeued one by one, so nothing spins). The next scan is one interval later.
5. the next scan is skipped while the delayed queue holds exactly as many messages as this
   scan left and none of those it saw is due yet: the queue then holds exactly what it saw
   (another scanner removes only due messages; one it saw would be due, so a removal
   balanced by an addition involves only messages added since, which are gone again). A
   skipped scan costs one passive declare instead of moving every message.

Any process that calls ``maintain`` releases them (every worker does, every
``delayed_task_interval``), including delays dispatched by a process that never consumes.
Never early: a message is released only once ``now >= due`` on the scanner's clock (clocks
of different machines must agree; NTP keeps them within milliseconds). Cost: a scan moves
every delayed message over the network once (about 0.3 ms of CPU per message against a
local broker: 5,000 delayed messages cost 1.6 s), each interval in which the delayed queue
changed (a dispatch, a release, another worker's scan in progress); a queue holding
:data:`SCAN_LIMIT` delayed messages or more is scanned a window at a time — the not-yet-due
messages of a full window are published again at the back (about 1.5 ms each: 15 s for a
window), every interval, so later scans reach the rest, and a delay beyond the window is
released up to a window's move late (11,000 one-hour delays queued: a 2 s delay came out
after 28 s). See docs/rabbitmq.md for the limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage

from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers.rabbitmq_link import FAILURES, Link

logger = logging.getLogger("asynctasq.drivers.rabbitmq")

SCAN_LIMIT = 10_000
"""The most delayed messages one scan holds at once."""

QUIET_SECONDS = 0.05
"""A scan stops collecting when no message arrived for this long."""


def due_ms(message: AbstractIncomingMessage) -> int:
    """Return when ``message`` is due (epoch ms); 0 (due) if the header is missing."""
    return form.header_int(message, form.DUE_MS, 0)


class DelayedRelease:
    """Releases the due messages of ``{queue}_delayed`` into ``queue`` (see module doc).

    Args:
        link: the driver's connection.

    """

    def __init__(self, link: Link) -> None:
        self._link = link
        self._ids = form.MessageIds()
        self._locks: dict[str, asyncio.Lock] = {}
        self._seen: dict[str, tuple[int, int]] = {}
        """Per queue, after a scan that saw the whole delayed queue: ``(messages left,
        earliest due time in epoch ms)``."""
        self.scans = 0
        """How many scans ran (a skipped one is not counted)."""

    async def run(self, queue: str) -> float | None:
        """Release the due delayed messages of ``queue``.

        Returns:
            Seconds until the earliest delayed message this scan saw is due, or ``None``
            when it saw none (or another scan of the queue is running in this process).

        Raises:
            Exception: what aio-pika raised (the caller translates it).

        """
        lock = self._locks.setdefault(queue, asyncio.Lock())
        if lock.locked():
            return None  # a scan of this queue is running in this process already
        async with lock:
            await self._link.ensure(queue)
            expected = await self._link.count(form.delayed_name(queue))
            if expected == 0:
                self._seen.pop(queue, None)
                return None
            seen = self._seen.pop(queue, None)
            now_ms = int(time.time() * 1000)
            if seen is not None and seen[0] == expected and seen[1] > now_ms:
                self._seen[queue] = seen  # nothing changed and nothing is due: no scan
                return (seen[1] - now_ms) / 1000
            self.scans += 1
            return await self._scan(queue, expected)

    async def _scan(self, queue: str, expected: int) -> float | None:
        received: list[AbstractIncomingMessage] = []
        arrived = asyncio.Event()

        async def on_message(message: AbstractIncomingMessage) -> None:
            received.append(message)
            arrived.set()

        async with self._link.temporary_channel(SCAN_LIMIT) as channel:
            delayed = await channel.get_queue(form.delayed_name(queue), ensure=False)
            await delayed.consume(on_message)
            while len(received) < min(expected, SCAN_LIMIT):
                arrived.clear()
                try:
                    async with asyncio.timeout(QUIET_SECONDS):
                        await arrived.wait()
                except TimeoutError:
                    break
            now_ms = int(time.time() * 1000)
            due = [message for message in received if due_ms(message) <= now_ms]
            moved = [message for message in received if due_ms(message) > now_ms]
            earliest = min((due_ms(message) for message in moved), default=None)
            whole = len(received) == expected and len(received) < SCAN_LIMIT
            if len(received) < SCAN_LIMIT:
                moved = []  # the whole queue was seen: the rest stays where it is
            await self._republish(queue, due, moved)
        if whole and earliest is not None:
            self._seen[queue] = (expected - len(due), earliest)
        return None if earliest is None else max(0.0, (earliest - now_ms) / 1000)

    async def _republish(
        self,
        queue: str,
        due: list[AbstractIncomingMessage],
        moved: list[AbstractIncomingMessage],
    ) -> None:
        """Publish ready copies of ``due`` and back-of-queue copies of ``moved``, then ack."""
        if not due and not moved:
            return
        outgoing = [(queue, queue, self._ready(m)) for m in due]
        outgoing += [(queue, form.delayed_name(queue), self._again(m)) for m in moved]
        await self._link.publish(outgoing)
        for message in (*due, *moved):
            with contextlib.suppress(*FAILURES):  # unacked: the channel close returns it
                await message.ack()
        if due:
            logger.debug("released %d due delayed messages on queue %r", len(due), queue)

    def _ready(self, message: AbstractIncomingMessage) -> Message:
        count = form.header_int(message, form.COUNT)
        return form.copy_of(message, self._ids.next(), count=count, priority=form.NORMAL)

    def _again(self, message: AbstractIncomingMessage) -> Message:
        headers = message.headers or {}
        task_id = headers.get(form.TASK_ID)
        return form.stored(
            message.body,
            message_id=self._ids.next(),
            vt_ms=form.header_int(message, form.VT_MS, 1),
            count=form.header_int(message, form.COUNT),
            task_id=task_id if isinstance(task_id, str) else "",
            due_ms=due_ms(message),
        )
