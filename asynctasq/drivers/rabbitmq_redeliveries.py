"""A redelivered copy of a message this driver is still running waits for it (C09, C32).

When a connection drops, RabbitMQ requeues every message unacked on it — including those
this worker is still running — and, once the robust connection is back, delivers them
again, often to this very worker. Run at once, the copy would execute the task a second
time while the first run is still going. So a redelivered copy whose ``message_id`` is
that of a delivery handed out here and not settled yet is *parked* (held unacked) while
that delivery's lease lives (the lease the worker renews with ``extend``, as on every
driver):

* the original settles first (the usual case): its ack, retry, dead-letter or release is
  carried out on the copy instead (the original's channel is gone), so the task runs and
  is recorded once;
* the original's lease runs out first (its worker is stuck): the copy is re-stamped (one
  more delivery counted) and handed out like any redelivery.

An original settled after its channel was lost but before its copy arrived is remembered
with its outcome for :data:`FINISHED_SECONDS`; a copy arriving meanwhile is settled at once
instead of run again: acked, or — for a retry or a dead letter — the next attempt (with its
delay) or the dead letter (with the task's real error) is published, then the copy acked.
A copy of a message that was only buffered here (prefetched, never handed out) when its
channel died is buffered again *uncounted*: it never started. A copy the broker gives to
another worker runs there, counted (at-least-once).
"""

from __future__ import annotations

import time
from typing import Literal

from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage

from asynctasq.drivers.rabbitmq_acks import Receipt

FINISHED_SECONDS = 600.0
"""How long an original finished while disconnected is remembered."""

Action = Literal["settle", "park", "restamp", "fresh"]

Outcome = tuple[str, tuple[str, str, Message]] | None
"""How a lost delivery was settled: ``None`` (acked), or ``(operation, (queue, routing key,
message))`` — the retry or dead letter to publish before acking its copy."""


def _id(message: AbstractIncomingMessage) -> str | None:
    return message.message_id or None


class Redeliveries:
    """Handed-out deliveries by message id, parked copies, and originals finished while lost."""

    def __init__(self) -> None:
        self._running: dict[str, Receipt] = {}
        self._parked: dict[str, tuple[str, AbstractIncomingMessage]] = {}
        self._finished: dict[str, tuple[float, Outcome]] = {}
        self._buffered: dict[str, Receipt] = {}
        self._unstarted: dict[str, float] = {}

    def buffered(self, receipt: Receipt) -> None:
        """Note a delivery put in the buffer (not started)."""
        if (key := _id(receipt.message)) is not None:
            self._buffered[key] = receipt

    def unbuffered(self, receipt: Receipt, *, lost: bool = False) -> None:
        """Note a delivery left the buffer; ``lost``: its channel died before it started."""
        key = _id(receipt.message)
        if key is None or self._buffered.get(key) is not receipt:
            return
        del self._buffered[key]
        if lost:
            self._unstarted[key] = self._prune(self._unstarted) + FINISHED_SECONDS

    @staticmethod
    def _prune(expiries: dict[str, float]) -> float:
        now = time.monotonic()
        for old in [old for old, until in expiries.items() if until <= now]:
            del expiries[old]
        return now

    def handed(self, receipt: Receipt) -> None:
        """Note a delivery handed out (its copies will wait for it)."""
        self.unbuffered(receipt)
        if (key := _id(receipt.message)) is not None:
            self._running[key] = receipt

    def settled(self, receipt: Receipt) -> None:
        """Forget a delivery that was settled."""
        key = _id(receipt.message)
        if key is not None and self._running.get(key) is receipt:
            del self._running[key]

    def arrived(self, queue: str, message: AbstractIncomingMessage) -> Action:
        """Decide what to do with a redelivered ``message`` (parking it if it must wait)."""
        key = _id(message)
        if key is None:
            return "restamp"
        finished = self._finished.get(key)
        if finished is not None and finished[0] > time.monotonic():
            return "settle"
        self._finished.pop(key, None)
        original = self._running.get(key)
        if original is not None and original.leased:
            self._parked[key] = (queue, message)
            return "park"
        prior = self._buffered.get(key)
        unstarted = self._unstarted.pop(key, None)
        if (prior is not None and prior.lost) or (unstarted or 0.0) > time.monotonic():
            return "fresh"  # it was only prefetched here: the lost delivery never started
        return "restamp"

    def claim(self, receipt: Receipt) -> AbstractIncomingMessage | None:
        """Return (and stop holding) the parked copy of a lost delivery, if one came."""
        key = _id(receipt.message)
        parked = None if key is None else self._parked.pop(key, None)
        return None if parked is None else parked[1]

    def park(self, queue: str, receipt: Receipt, message: AbstractIncomingMessage) -> None:
        """Hold ``message`` again as the copy of ``receipt`` (a settlement failed)."""
        if (key := _id(receipt.message)) is not None:
            self._parked[key] = (queue, message)

    def finished_while_lost(self, receipt: Receipt, outcome: Outcome = None) -> None:
        """Remember how a lost delivery was settled: a copy arriving later is settled so.

        Args:
            receipt: the lost delivery.
            outcome: ``None`` (acked) or the retry / dead letter to publish (see
                :data:`Outcome`).

        """
        self.remember(_id(receipt.message), outcome)

    def remember(self, key: str | None, outcome: Outcome) -> None:
        """Remember ``outcome`` for the copies of message id ``key`` (see above)."""
        now = time.monotonic()
        for old in [old for old, (until, _) in self._finished.items() if until <= now]:
            del self._finished[old]
        if key is not None:
            self._finished[key] = (now + FINISHED_SECONDS, outcome)

    def outcome(self, message: AbstractIncomingMessage) -> Outcome:
        """Return (and forget) the outcome remembered for ``message``'s original.

        Call after :meth:`arrived` returned ``"settle"``.
        """
        key = _id(message)
        found = None if key is None else self._finished.pop(key, None)
        return None if found is None else found[1]

    def expired(self) -> list[tuple[str, AbstractIncomingMessage]]:
        """Release the parked copies whose original's lease ran out (or that has gone)."""
        due = []
        for key, (queue, message) in list(self._parked.items()):
            original = self._running.get(key)
            if original is None or not original.leased:
                del self._parked[key]
                due.append((queue, message))
        return due
