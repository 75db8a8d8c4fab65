"""Dead letters in ``{queue}_dead``: stored with confirms, listed, requeued and purged.

Each dead letter is one persistent message whose body is the msgpack-packed
:class:`~asynctasq.drivers.protocol.DeadLetterEntry` (error type, message, attempts, the
task's last body) and whose headers summarise it (:mod:`rabbitmq_format`).

Listing and requeueing read the queue with ``basic.get`` on a channel of their own and
leave what they do not take unacked; closing that channel puts those messages back in
their places, so the order (oldest first) is kept.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import attrs
from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage

from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers.dead_entry_format import unpack_dead_entry
from asynctasq.drivers.protocol import DeadLetterEntry
from asynctasq.drivers.rabbitmq_link import FAILURES, Link

logger = logging.getLogger("asynctasq.drivers.rabbitmq")


class DeadLetters:
    """The dead-letter queues of one driver.

    Args:
        link: the driver's connection.

    """

    def __init__(self, link: Link) -> None:
        self._link = link
        self._ids = form.MessageIds()

    def message(self, entry: DeadLetterEntry, vt_ms: int) -> tuple[str, str, Message]:
        """Return the ``(queue, routing key, message)`` that stores ``entry``."""
        stored = form.dead_letter(entry, vt_ms, self._ids.next())
        return entry.queue, form.dead_name(entry.queue), stored

    async def entries(self, queue: str, *, limit: int) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first (none removed)."""
        await self._link.ensure(queue)
        async with self._link.temporary_channel(0) as channel:
            dead = await channel.get_queue(form.dead_name(queue), ensure=False)
            found: list[DeadLetterEntry] = []
            while len(found) < limit:
                message = await dead.get(fail=False, timeout=self._link.timeout_seconds)
                if message is None:
                    break
                unpacked = _unpack(queue, message)
                if unpacked is not None:
                    found.append(unpacked[0])
        return found

    async def requeue(
        self,
        queue: str,
        task_ids: Sequence[str] | None,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> int:
        """Move dead letters (all, or those with the given task ids) to the back of ``queue``.

        Each goes back as a fresh message (count 0) with its lease length, its body passed
        through ``rewrite`` first when given (an entry ``rewrite`` raises for stays, logged);
        the copies are confirmed before the dead letters are acked. Returns how many moved.
        """
        wanted = None if task_ids is None else set(task_ids)
        await self._link.ensure(queue)
        async with self._link.temporary_channel(0) as channel:
            dead = await channel.get_queue(form.dead_name(queue), ensure=False)
            chosen: list[tuple[AbstractIncomingMessage, DeadLetterEntry, int]] = []
            while True:
                message = await dead.get(fail=False, timeout=self._link.timeout_seconds)
                if message is None:
                    break
                unpacked = _unpack(queue, message)
                if unpacked is None or (wanted is not None and unpacked[0].task_id not in wanted):
                    continue
                entry, vt_ms = unpacked
                body = _rewritten(queue, entry, rewrite)
                if body is not None:
                    chosen.append((message, attrs.evolve(entry, body=body), vt_ms))
            copies = [
                (
                    queue,
                    queue,
                    form.stored(
                        entry.body,
                        message_id=self._ids.next(),
                        vt_ms=vt_ms,
                        task_id=entry.task_id,
                    ),
                )
                for _, entry, vt_ms in chosen
            ]
            if copies:
                await self._link.publish(copies)
            for message, _, _ in chosen:
                with contextlib.suppress(*FAILURES):  # unacked: the channel close keeps it
                    await message.ack()
        return len(chosen)

    async def purge(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were."""
        await self._link.ensure(queue)
        channel = await self._link.admin.get_underlay_channel()
        purged = await channel.queue_purge(
            form.dead_name(queue), timeout=self._link.timeout_seconds
        )
        return int(purged.message_count or 0)


def _rewritten(
    queue: str, entry: DeadLetterEntry, rewrite: Callable[[bytes], bytes] | None
) -> bytes | None:
    if rewrite is None:
        return entry.body
    try:
        return rewrite(entry.body)
    except Exception as exc:  # the entry stays dead-lettered
        logger.warning(
            "dead letter %s on queue %r stays: its body could not be rewritten (%s: %s)",
            entry.task_id or "(no task id)",
            queue,
            type(exc).__name__,
            exc,
        )
        return None


def _unpack(queue: str, message: AbstractIncomingMessage) -> tuple[DeadLetterEntry, int] | None:
    try:
        return unpack_dead_entry(message.body)
    except ValueError as exc:
        logger.warning("skipping an unreadable dead letter on queue %r: %s", queue, exc)
        return None
