"""Receiving from SQS: leases, long polls across queues, hops of long delays.

Leases. A message is received with a provisional visibility timeout (the largest lease
recently seen on that queue, at least :data:`PROVISIONAL_SECONDS`), then moved to its own
(``asynctasq-vt``, whole seconds) with one ``ChangeMessageVisibilityBatch`` call, skipped
when nothing differs. Each :class:`Lease` keeps a local deadline (monotonic clock, taken
*before* the call that set it, so it is never later than the server's): SQS accepts stale
receipt handles, so a lease past its deadline is treated as lost and never acked, retried,
dead-lettered, released or extended (another consumer may hold the message by then).

Waiting. One queue: a long poll of ``WaitTimeSeconds`` up to 20. Several queues: a
short receive on each, in priority order, then one long poll per queue at once (rounds of
at most :data:`MULTI_QUEUE_POLL_SECONDS`); the first to bring messages ends the wait. A
poll that is still running then (or when the caller is cancelled) is never cut off, since
SQS may hand a message to a request whose client went away and hide it for a whole
visibility timeout: it runs to its end in the background and what it brings is released
without counting a delivery. ``close()`` waits for those polls. Each long poll
lasts the wait left rounded to the nearest second (:func:`poll_seconds`), so a wait of
1 s is one long poll of 1 s, never a sleep and a short receive; only a rest under half a
second (a wait of 0.3 s, or 1.3 s after a 1-second poll) is a sleep then one short receive.

Hops. A received message whose delay is not over yet (:func:`~.sqs_format.rest_seconds`)
is re-sent with the next hop's delay and deleted, never delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs

from asynctasq.drivers import sqs_format as wire
from asynctasq.drivers.protocol import Delivery
from asynctasq.drivers.sqs_client import SQSConnection
from asynctasq.errors import DriverError

logger = logging.getLogger("asynctasq.drivers.sqs")

PROVISIONAL_SECONDS = 30
"""Smallest visibility timeout a receive asks for before each message gets its own."""

MULTI_QUEUE_POLL_SECONDS = 2
"""Longest single long poll while waiting on several queues (bounds what runs on after)."""

LEASE_MARGIN_SECONDS = 5
"""Seconds kept off the 12 hours SQS allows from a receive (clock drift, request time)."""

CLOSE_WAIT_SECONDS = wire.MAX_WAIT_SECONDS + 5.0
"""How long ``close()`` waits for background polls before cancelling them."""


@attrs.define(eq=False)
class Lease:
    """The driver's receipt for one delivery (``Delivery.receipt``).

    Attributes:
        url: the queue URL.
        handle: the SQS receipt handle.
        vt: the visibility timeout in force, whole seconds.
        deadline: ``time.monotonic()`` by which the lease surely still holds.
        count: the delivery count reported for this delivery.

    """

    url: str
    handle: str
    vt: int
    deadline: float
    count: int

    def held(self, now: float) -> bool:
        """Return whether the lease surely still holds at ``now`` (monotonic seconds)."""
        return now < self.deadline

    def drop(self) -> None:
        """Mark the lease as ended (acked, retried, dead-lettered or released)."""
        self.deadline = float("-inf")


def leases(deliveries: Sequence[Delivery]) -> list[Lease]:
    """Return the leases of ``deliveries``."""
    return [delivery.receipt for delivery in deliveries]


def chunks(items: Sequence[Any], size: int = wire.MAX_BATCH) -> list[Sequence[Any]]:
    """Split ``items`` into slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def poll_seconds(remaining: float) -> int:
    """Return the ``WaitTimeSeconds`` of a long poll for ``remaining`` seconds of wait.

    Whole seconds, rounded to the nearest (so a wait of 1.0 s measured a hair late is still a
    1-second poll, never a sleep and a short receive), within 0..20; 0 under half a second.
    """
    return min(wire.MAX_WAIT_SECONDS, max(0, round(remaining)))


def batch_failures(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the ``Failed`` entries of a ``*Batch`` response."""
    return list(response.get("Failed", []))


class Receiver:
    """Leases messages for one driver.

    Args:
        conn: the driver's connection.
        hop_seconds: the longest native delay per hop.
        release: the driver's ``release`` (for what a background poll brings).

    """

    def __init__(
        self,
        conn: SQSConnection,
        hop_seconds: int,
        release: Callable[[Sequence[Delivery]], Awaitable[None]],
    ) -> None:
        self._conn = conn
        self._hop = hop_seconds
        self._release = release
        self._provisional: dict[str, int] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def receive(self, queue: str, count: int, wait: int) -> tuple[list[Delivery], int]:
        """Receive up to ``count`` (<= 10) messages from ``queue``, waiting ``wait`` seconds.

        Returns:
            The deliveries (hops re-sent, not included) and how many messages came.

        Raises:
            DriverError: SQS failed.

        """
        url = self._conn.url(queue)
        provisional = self._provisional.get(url, PROVISIONAL_SECONDS)
        started = time.monotonic()
        response = await self._conn.call(
            "dequeue",
            "receive_message",
            url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            VisibilityTimeout=provisional,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=list(wire.SYSTEM_ATTRIBUTES),
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        ready: list[dict[str, Any]] = []
        hops: list[tuple[dict[str, Any], float]] = []
        for message in messages:
            rest = wire.rest_seconds(message)
            if rest > 0:
                hops.append((message, rest))
            else:
                ready.append(message)
        if hops:
            await self._rehop(url, hops)
        if not ready:
            return [], len(messages)
        deliveries = await self._lease(queue, url, ready, provisional, started)
        return deliveries, len(messages)

    async def _lease(
        self,
        queue: str,
        url: str,
        ready: list[dict[str, Any]],
        provisional: int,
        started: float,
    ) -> list[Delivery]:
        vts = [
            wire.lease_seconds(wire.attribute(m, wire.VT, wire.DEFAULT_VISIBILITY_SECONDS))
            for m in ready
        ]
        self._provisional[url] = max(PROVISIONAL_SECONDS, *vts)
        deadlines = [started + provisional] * len(ready)
        late = time.monotonic() - started > 1.0
        now = time.monotonic()
        # SQS counts 12 h from the receive: ask at most what is left of it, less a margin
        cap = wire.MAX_VISIBILITY_SECONDS - wire.whole_seconds(now - started) - LEASE_MARGIN_SECONDS
        vts = [min(vt, cap) for vt in vts]
        changes = [i for i, vt in enumerate(vts) if late or vt != provisional]
        lost: set[int] = set()
        if changes:
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": ready[i]["ReceiptHandle"],
                    "VisibilityTimeout": vts[i],
                }
                for i in changes
            ]
            for part in chunks(entries):
                lost |= await self._change(queue, url, part)
            for i in changes:
                if i not in lost:
                    deadlines[i] = now + vts[i]
            if lost:
                logger.warning(
                    "could not set the visibility timeout of %d messages on %r: not handed out "
                    "(they come back after %d s)",
                    len(lost),
                    queue,
                    provisional,
                )
        ready, vts, deadlines = (
            [ready[i] for i in range(len(ready)) if i not in lost],
            [vts[i] for i in range(len(vts)) if i not in lost],
            [deadlines[i] for i in range(len(deadlines)) if i not in lost],
        )
        return [
            Delivery(
                queue,
                wire.decode_body(str(message.get("Body", ""))),
                Lease(url, message["ReceiptHandle"], vt, deadline, wire.delivery_count(message)),
                wire.delivery_count(message),
                float(vt),
            )
            for message, vt, deadline in zip(ready, vts, deadlines, strict=True)
        ]

    async def _change(self, queue: str, url: str, part: Sequence[dict[str, Any]]) -> set[int]:
        """Set the visibility timeouts of ``part``; return the ``Id`` numbers that failed.

        A call rejected as a whole (one bad entry can do that) is made again entry by entry,
        so that one message never costs the others their lease. Failures are logged, never
        raised: a message whose lease was not set comes back after the provisional timeout.
        """
        try:
            response = await self._conn.call(
                "dequeue", "change_message_visibility_batch", url, Entries=list(part)
            )
        except DriverError as exc:
            if len(part) == 1:
                logger.warning("visibility change of a message on %r failed: %s", queue, exc)
                return {int(part[0]["Id"])}
            failed: set[int] = set()
            for entry in part:
                failed |= await self._change(queue, url, [entry])
            return failed
        failures = batch_failures(response)
        for failure in failures:
            logger.warning(
                "visibility change of a message on %r failed: %s", queue, failure.get("Code")
            )
        return {int(f["Id"]) for f in failures}

    async def _rehop(self, url: str, hops: list[tuple[dict[str, Any], float]]) -> None:
        """Re-send each early message with its next hop, then delete the originals re-sent.

        An original whose copy was not stored stays: it comes back after the provisional
        timeout and is re-sent then.
        """
        sends = [wire.next_hop(message, rest, self._hop) for message, rest in hops]
        originals = {id(send): message for send, (message, _) in zip(sends, hops, strict=True)}
        for part in wire.batches(sends):
            entries = [send.entry(str(i)) for i, send in enumerate(part)]
            response = await self._conn.call("dequeue", "send_message_batch", url, Entries=entries)
            sent = [originals[id(part[int(ok["Id"])])] for ok in response.get("Successful", [])]
            if len(sent) < len(part):
                logger.warning("could not re-send %d delayed messages", len(part) - len(sent))
            if sent:
                deletes = [
                    {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                    for i, message in enumerate(sent)
                ]
                await self._conn.call("dequeue", "delete_message_batch", url, Entries=deletes)

    async def _short_pass(self, queues: Sequence[str], limit: int) -> list[Delivery]:
        got: list[Delivery] = []
        for queue in queues:
            while len(got) < limit:
                asked = min(wire.MAX_BATCH, limit - len(got))
                found, came = await self.receive(queue, asked, 0)
                got += found
                if came < asked:
                    break
            if len(got) >= limit:
                break
        return got

    async def dequeue(
        self, queues: Sequence[str], limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Lease up to ``limit`` messages, earlier queues first; see the module docstring."""
        if not queues or limit <= 0:
            return []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, wait_seconds)
        got: list[Delivery] = []
        if len(queues) > 1 or wait_seconds < 1:
            got = await self._short_pass(queues, limit)
        while not got:
            remaining = deadline - loop.time()
            wait = poll_seconds(remaining)
            if wait == 0:
                if remaining > 0:  # a sub-second rest: SQS waits in whole seconds
                    await asyncio.sleep(remaining)
                    got = await self._short_pass(queues, limit)
                break
            got = await self._long_poll(queues, limit, wait)
        if len(got) == wire.MAX_BATCH and limit > len(got):
            got += await self._short_pass([got[0].queue], limit - len(got))
        return got

    async def _long_poll(self, queues: Sequence[str], limit: int, wait: int) -> list[Delivery]:
        asked = min(wire.MAX_BATCH, limit)
        if len(queues) > 1:
            wait = min(wait, MULTI_QUEUE_POLL_SECONDS)
        polls = {q: asyncio.ensure_future(self.receive(q, asked, wait)) for q in queues}
        pending: set[asyncio.Future[tuple[list[Delivery], int]]] = set(polls.values())
        try:
            while pending:
                # asyncio.wait never cancels the polls, even when this call is cancelled
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if any(task.result()[0] for task in done):
                    break
        except BaseException:
            self._adopt([p for p in polls.values() if not p.done()])
            for poll in polls.values():
                if poll.done() and not poll.cancelled() and poll.exception() is None:
                    self._adopt_result(poll.result()[0])
            raise
        self._adopt(list(pending))
        got: list[Delivery] = []
        for poll in polls.values():
            if poll.done():
                got += poll.result()[0]
        if len(got) > limit:
            self._adopt_result(got[limit:])
            got = got[:limit]
        return got

    def _adopt(self, polls: list[asyncio.Future[tuple[list[Delivery], int]]]) -> None:
        for poll in polls:
            task = asyncio.ensure_future(self._settle(poll))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _adopt_result(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            future: asyncio.Future[tuple[list[Delivery], int]] = asyncio.Future()
            future.set_result((deliveries, len(deliveries)))
            self._adopt([future])

    async def _settle(self, poll: asyncio.Future[tuple[list[Delivery], int]]) -> None:
        try:
            deliveries, _ = await poll
            if deliveries:
                await self._release(deliveries)
        except Exception as exc:  # the leases expire and SQS redelivers
            logger.warning("a background receive failed: %s", exc)

    async def close(self) -> None:
        """Wait for background polls to end and release what they brought."""
        if self._background:
            _, pending = await asyncio.wait(set(self._background), timeout=CLOSE_WAIT_SECONDS)
            for task in pending:
                task.cancel()
