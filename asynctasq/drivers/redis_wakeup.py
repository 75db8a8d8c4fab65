"""Waiting, without polling, for the next ready element, and taking it in the same command.

An idle worker blocks in ``BLMOVE queue:{name} <grab list> RIGHT LEFT`` on each queue it
serves. When a message is pushed, Redis moves the oldest element into this worker's own
grab list (:func:`~asynctasq.drivers.redis_format.grab_key`) and returns it in the same
reply: the element is then this worker's alone, so the task can start at once while the
lease is written in the background (``ADOPT``: grab list -> processing set). That saves
the claim round trip on the latency path of an idle worker.

Crash safety: a ``BLMOVE`` only runs while its grab list is registered in
:data:`~asynctasq.drivers.redis_format.GRABS_KEY` until at least the end of its block time +
:data:`GRAB_MARGIN_SECONDS`; when less is left, the registration is renewed (for the block
time + twice the margin) in the same pipeline as the ``BLMOVE`` (no extra round trip; the
other waits are a plain ``BLMOVE``, cheaper to parse). If the worker dies
between the move and the adoption, the registration lapses and any worker's ``MAINTAIN``
puts the element back at the front of its queue with its delivery count raised (the
attempt may have started, so a message that kills its worker still reaches the
dead-letter store).

A wait that fails (its connection broke: the ``BLMOVE`` may have moved an element whose
reply never came) is not retried by redis-py; its grab list is retired and the next wait
uses a new one. The retired list is no longer renewed, so ``MAINTAIN`` returns whatever it
holds once its registration lapses (within the block time + twice the margin), instead of
the element waiting there until the worker closes.

An element that arrives while nobody waits (the wait ended for another queue, or timed
out on the client first) is put back at the front at once (``UNGRAB``), unchanged.
A pending wait is reused by the next ``wait`` call instead of being cancelled (cancelling
a command mid-reply closes its connection). One blocking command watches one key, so
several queues are watched by concurrent commands, each on its own connection from a pool
separate from the driver's main pool (a blocked connection must not starve acks).

Source: Redis docs, "BLMOVE": blocks while the source is empty, then moves and returns
its element atomically.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis

from asynctasq.drivers import redis_format as form
from asynctasq.drivers import redis_scripts as lua

logger = logging.getLogger(__name__)

_MIN_BLOCK_SECONDS = 0.01

GRAB_MARGIN_SECONDS = 30.0
"""How long a grab list stays registered after its ``BLMOVE`` could have returned.

The element must be adopted (or put back) within this time, or ``MAINTAIN`` recovers it."""

Landed = tuple[str, bytes, str]
"""A grabbed element: (the ready list key it came from, the element, the grab list it is in)."""


class ReadyWatch:
    """Waits for any of several ready lists to hold an element, and takes one from each.

    Args:
        client: a client whose pool is used only for blocking waits, with no socket timeout
            (or one longer than any wait).
        main: the driver's main client (puts unused elements back).
        grab_key: (ready list key, generation) -> this driver's grab list key for it. A
            wait that fails retires its grab list and the next uses the next generation.

    """

    def __init__(self, client: Redis, main: Redis, grab_key: Callable[[str, int], str]) -> None:
        self._client = client
        self._grab_key = grab_key
        self._generations: dict[str, int] = {}  # ready list -> generation of its grab list
        self._register = client.register_script(lua.GRAB_REGISTER)
        self._ungrab = main.register_script(lua.UNGRAB)
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._landed: list[Landed] = []
        self._waiters = 0
        self._signal: asyncio.Future[None] | None = None
        self._returns: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        self._registered_until: dict[str, float] = {}  # grab list -> monotonic deadline
        self.grabbed_keys: set[str] = set()
        """Every grab list this watch has registered (for the driver's ``close``)."""

    async def _block(self, key: str, seconds: float) -> None:
        grab = self._grab_key(key, self._generations.get(key, 0))
        self.grabbed_keys.add(grab)
        try:
            moved = await self._move(key, grab, seconds)
        except Exception:
            self._retire(key, grab)
            raise
        if moved is None:
            return
        if self._waiters:
            self._landed.append((key, moved, grab))
            self._wake()
        else:
            self.put_back([(key, moved, grab)])

    def _retire(self, key: str, grab: str) -> None:
        """Stop using ``grab`` after a wait on it failed.

        The failed ``BLMOVE`` may have moved an element there whose reply never came. Its
        registration is no longer renewed, so once it lapses ``MAINTAIN`` returns anything
        left in it to the queue (counted as a delivery); meanwhile elements landed from it
        are adopted from it.
        """
        self._generations[key] = self._generations.get(key, 0) + 1
        self._registered_until.pop(grab, None)
        logger.info("a wait on %s failed; its grab list %s is retired", key, grab)

    async def _move(self, key: str, grab: str, seconds: float) -> bytes | None:
        now = time.monotonic()
        moved: bytes | None
        # redis-py types the timeout as int; Redis >= 6 takes fractional seconds.
        if self._registered_until.get(grab, 0.0) >= now + seconds + GRAB_MARGIN_SECONDS:
            block: Any = seconds  # redis-py types it as int
            moved = await self._client.blmove(key, grab, block, "RIGHT", "LEFT")  # type: ignore[assignment]
        else:  # (re)register for twice the margin, in the same round trip as the wait
            hold = seconds + 2 * GRAB_MARGIN_SECONDS
            async with self._client.pipeline(transaction=False) as pipe:
                await self._register([form.GRABS_KEY], [grab, form.to_ms(hold)], client=pipe)
                pipe.blmove(key, grab, seconds, "RIGHT", "LEFT")  # type: ignore[arg-type]
                _, moved = await pipe.execute()
            self._registered_until[grab] = now + hold
        return moved

    def _wake(self) -> None:
        if self._signal is not None and not self._signal.done():
            self._signal.set_result(None)

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled() and (error := task.exception()) is not None:
            self._error = error  # the next ``wait`` raises it
        self._wake()  # a waiter blocks again (this command may have timed out empty)

    def _watch(self, key: str, seconds: float) -> asyncio.Task[None]:
        task = self._pending.get(key)
        if task is None or task.done():
            task = asyncio.create_task(self._block(key, max(seconds, _MIN_BLOCK_SECONDS)))
            task.add_done_callback(lambda done: self._forget(key, done))
            self._pending[key] = task
        return task

    def put_back(self, landed: Sequence[Landed]) -> None:
        """Return grabbed elements to the front of their queues, unchanged (in the background).

        A failure is logged; the registration then lapses and ``MAINTAIN`` recovers them.
        """
        for key, element, grab in landed:
            task = asyncio.get_running_loop().create_task(self._put_back(key, element, grab))
            self._returns.add(task)
            task.add_done_callback(self._returns.discard)

    async def _put_back(self, key: str, element: bytes, grab: str) -> None:
        try:
            await self._ungrab([grab, key, form.GRABS_KEY], [element])
        except Exception as exc:  # MAINTAIN recovers it once the registration lapses
            logger.warning("could not put a grabbed element back on %s: %s", key, exc)

    async def wait(self, keys: Sequence[str], seconds: float) -> list[Landed]:
        """Block up to ``seconds`` until elements are grabbed from any list in ``keys``.

        Returns:
            The grabbed elements (at most one per key, usually one), each already out of
            its ready list and in this driver's grab list; ``[]`` after ``seconds``.

        Raises:
            redis.RedisError: a blocking command failed (the caller translates it); anything
                grabbed meanwhile is put back.

        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        wanted = set(keys)
        self._waiters += 1
        failed = True
        try:
            while not self._landed and (remaining := deadline - loop.time()) > 0:
                self._raise_error()
                for key in keys:
                    self._watch(key, remaining)
                self._signal = loop.create_future()
                done, _ = await asyncio.wait({self._signal}, timeout=remaining)
                if not done:
                    self._signal.cancel()
            failed = False
        finally:
            self._waiters -= 1
            landed, self._landed = self._landed, []
            if failed:
                self.put_back(landed)
        self.put_back([item for item in landed if item[0] not in wanted])
        return [item for item in landed if item[0] in wanted]

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    async def close(self) -> None:
        """Cancel every pending wait and finish the put-backs in flight."""
        pending = list(self._pending.values())
        self._pending.clear()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._landed:
            self.put_back(self._landed)
            self._landed = []
        await asyncio.gather(*list(self._returns), return_exceptions=True)
