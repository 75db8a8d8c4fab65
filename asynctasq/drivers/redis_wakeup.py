"""Waiting, without polling, until one of several Redis lists has an element.

``BLMOVE key key RIGHT RIGHT timeout`` on the list itself blocks until the list is not empty
and then moves its oldest element from the right end back to the right end: a no-op that
removes nothing, so the waiter only learns "something is ready" and the claim script does
the actual (atomic) taking. Redis wakes every client blocked on the key, so idle workers all
try to claim and the fastest wins.

One blocking command watches one key, so several queues are watched by concurrent commands,
each on its own connection from a small pool separate from the driver's main pool (a
blocked connection must not starve acks). A pending wait is reused by the next ``wait``
call instead of being cancelled (cancelling a command mid-reply closes its connection).

Source: Redis docs, "LMOVE": "If source and destination are the same, the operation is
equivalent to removing the first/last element from the list and pushing it as first/last
element of the list, so it can be considered as a list rotation command (or a no-op if
wherefrom is the same as whereto)"; "BLMOVE": blocks while the source is empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

_MIN_BLOCK_SECONDS = 0.01


class ReadyWatch:
    """Waits for any of several ready lists to become non-empty.

    Args:
        client: a client whose pool is used only for blocking waits, with no socket timeout
            (or one longer than any wait).

    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._pending: dict[str, asyncio.Task[bool]] = {}

    async def _block(self, key: str, seconds: float) -> bool:
        # redis-py types the timeout as int; Redis >= 6 takes fractional seconds.
        moved = await self._client.blmove(key, key, seconds, "RIGHT", "RIGHT")  # type: ignore[arg-type]
        return moved is not None

    def _forget(self, key: str, task: asyncio.Task[bool]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved here; ``wait`` re-raises it when it awaits the task

    def _watch(self, key: str, seconds: float) -> asyncio.Task[bool]:
        task = self._pending.get(key)
        if task is None or task.done():
            task = asyncio.create_task(self._block(key, max(seconds, _MIN_BLOCK_SECONDS)))
            task.add_done_callback(lambda done: self._forget(key, done))
            self._pending[key] = task
        return task

    async def wait(self, keys: Sequence[str], seconds: float) -> bool:
        """Return ``True`` once any list in ``keys`` has an element, ``False`` after ``seconds``.

        Raises:
            redis.RedisError: a blocking command failed (the caller translates it).

        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            watches = [self._watch(key, remaining) for key in keys]
            done, _ = await asyncio.wait(
                watches, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                return False
            if any(task.result() for task in done):
                return True
        return False

    async def close(self) -> None:
        """Cancel every pending wait and wait for the cancellations to finish."""
        pending = list(self._pending.values())
        self._pending.clear()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
