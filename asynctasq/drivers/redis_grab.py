"""Grabbed messages: what an idle ``BLMOVE`` hands a Redis driver, turned into deliveries.

:class:`~asynctasq.drivers.redis_wakeup.ReadyWatch` moves the element that wakes an idle
consumer into this driver's own grab list. :class:`Grabs` returns it as a delivery at once
(the count raised, exactly as the claim script would) and writes its lease in the
background (``ADOPT``: grab list -> processing set). Every later call on a delivery
(ack, release, retry, dead-letter) first waits for the leases in flight
(:meth:`Grabs.settled`), so it always finds the lease in the processing set.

If the lease cannot be written within
:data:`~asynctasq.drivers.redis_wakeup.GRAB_MARGIN_SECONDS` (Redis unreachable), the grab
list's registration lapses and ``MAINTAIN`` returns the element to its queue with the attempt
counted; this worker may then run it a second time (at-least-once). On close, anything left
in the grab lists goes back to the front of its queue and the lists are unregistered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from asynctasq.drivers import redis_format as form
from asynctasq.drivers import redis_scripts as lua
from asynctasq.drivers.protocol import Delivery
from asynctasq.drivers.redis_wakeup import GRAB_MARGIN_SECONDS, Landed, ReadyWatch

logger = logging.getLogger("asynctasq.drivers.redis")

_FAILURES = (RedisError, OSError)
_MAX_PAUSE_SECONDS = 2.0


class Grabs:
    """Idle waits that take the message, and the background leases of what they took.

    Args:
        watch_client: a client for blocking commands only (no socket timeout).
        client: the driver's main client (leases, put-backs).
        ids: the driver's element ids (a fresh id for an element without a header).

    """

    def __init__(self, watch_client: Redis, client: Redis, ids: form.ElementIds) -> None:
        self._ids = ids
        self._nonce = ids.nonce()
        self.watch = ReadyWatch(watch_client, client, self.key)
        self._adopt = client.register_script(lua.ADOPT)
        self._ungrab = client.register_script(lua.UNGRAB)
        self._adoptions: set[asyncio.Task[None]] = set()

    def key(self, ready_key: str, generation: int = 0) -> str:
        """Return this driver's grab list for the ready list ``ready_key``.

        ``generation`` counts the grab lists retired after a failed wait
        (:meth:`ReadyWatch._retire`); each generation is a distinct list.
        """
        nonce = self._nonce if generation == 0 else b"%s.%d" % (self._nonce, generation)
        return form.grab_key(nonce, ready_key[len("queue:") :])

    async def wait(
        self, queues: Sequence[str], ready_keys: Sequence[str], limit: int, seconds: float
    ) -> list[Delivery]:
        """Block up to ``seconds`` for a message on any of ``queues``; return it leased.

        Args:
            queues: the queue names, in the order of ``ready_keys``.
            ready_keys: their ready list keys.
            limit: the most deliveries to return (more grabbed at once go back).
            seconds: how long to block.

        Returns:
            The deliveries (usually one), or ``[]`` after ``seconds``.

        Raises:
            redis.RedisError: a blocking command failed.

        """
        landed = await self.watch.wait(ready_keys, seconds)
        return self.take(queues, landed, limit) if landed else []

    def take(self, queues: Sequence[str], landed: list[Landed], limit: int) -> list[Delivery]:
        """Turn grabbed elements into deliveries now; write their leases in the background."""
        keep, extra = landed[:limit], landed[limit:]
        self.watch.put_back(extra)
        by_key = {form.ready_key(queue): queue for queue in queues}
        deliveries: list[Delivery] = []
        adopt: dict[tuple[str, str], list[bytes | int]] = {}
        nonce = self._ids.nonce()
        for number, (key, element, grab) in enumerate(keep):
            member, vt_ms = form.next_member(element, b"%sg%d" % (nonce, number + 1))
            deliveries.append(form.delivery(by_key[key], member))
            adopt.setdefault((key, grab), []).extend([element, member, vt_ms])
        loop = asyncio.get_running_loop()
        for (key, grab), args in adopt.items():
            task = loop.create_task(self._lease(key, grab, args))
            self._adoptions.add(task)
            task.add_done_callback(self._adoptions.discard)
        return deliveries

    async def _lease(self, key: str, grab: str, args: list[bytes | int]) -> None:
        """Lease grabbed elements (grab list -> processing set), retrying while it may help."""
        await asyncio.sleep(0)  # the element is already ours: let its task start first
        queue = key[len("queue:") :]
        keys = [grab, form.processing_key(queue)]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + GRAB_MARGIN_SECONDS
        pause = 0.05
        while True:
            try:
                adopted = await self._adopt(keys, args)
            except _FAILURES as exc:
                if loop.time() + pause >= give_up:
                    logger.warning("could not lease a grabbed message on %r: %s", queue, exc)
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, _MAX_PAUSE_SECONDS)
                continue
            if adopted < len(args) // 3:
                logger.warning(
                    "%d grabbed messages on queue %r were recovered before their lease was "
                    "written; they may run twice",
                    len(args) // 3 - adopted,
                    queue,
                )
            return

    async def settled(self) -> None:
        """Wait until the leases of grabbed deliveries are written (normally already)."""
        if self._adoptions:
            await asyncio.gather(*list(self._adoptions), return_exceptions=True)

    async def close(self) -> None:
        """Stop the waits, finish the leases, put back what is left and unregister."""
        await self.watch.close()
        await self.settled()
        for grab in self.watch.grabbed_keys:
            ready = form.ready_key(grab.split(":", 3)[3])
            try:
                await self._ungrab([grab, ready, form.GRABS_KEY], [])
            except _FAILURES as exc:  # MAINTAIN recovers them once the registration lapses
                logger.warning("could not put grabbed elements back on %s: %s", ready, exc)
