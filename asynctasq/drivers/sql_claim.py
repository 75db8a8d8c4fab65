"""Claiming rows for a ``dequeue``, and how long an idle one waits (SQL drivers).

Source: SPEC §4 (earlier queues first); FIELD-CASES C05 (each row claimed exactly once).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from asynctasq.drivers.protocol import Delivery
from asynctasq.drivers.sql_connector import Connector
from asynctasq.drivers.sql_wakeup import MIN_POLL_SECONDS, Wakeup


async def claim(db: Connector, queues: Sequence[str], limit: int) -> list[Delivery]:
    """Lease up to ``limit`` rows, earlier queues first, under one fresh random lease token.

    Each queue is one ``claim`` (one statement, or MySQL's short transaction); within a
    queue rows come oldest ``available_at`` first, ids breaking ties. The receipt of a
    delivery is ``(row id, lease token)``.
    """
    lease = secrets.randbits(63)
    claimed: list[Delivery] = []
    for queue in queues:
        params = {"queue": queue, "limit": limit - len(claimed), "lease": lease}
        rows = await db.claim("claim", {**params, "now": time.time()})
        rows = sorted(rows, key=lambda row: (row[4], row[0]))
        claimed += [
            Delivery(queue, bytes(row[1]), (row[0], lease), int(row[2]), float(row[3]))
            for row in rows
        ]
        if len(claimed) >= limit:
            break
    return claimed


async def pause(db: Connector, wakeup: Wakeup, queues: Sequence[str], remaining: float) -> float:
    """Return how long an idle ``dequeue`` waits, in seconds.

    Until the next delayed row of ``queues`` is due, at most ``remaining``; a polling
    driver gets ``remaining`` (its watch caps the wait at the poll interval).
    """
    if wakeup.polling:
        return remaining
    [[due]] = await db.fetch("next_due", {"queues": list(queues), "now": time.time()})
    if due is None:
        return remaining
    return min(remaining, max(float(due), MIN_POLL_SECONDS))
