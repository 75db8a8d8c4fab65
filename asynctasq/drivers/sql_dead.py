"""Dead letters in the SQL drivers: rows read back as entries, and requeued in one step."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing
from asynctasq.drivers.sql_connector import Row, Session

logger = logging.getLogger("asynctasq.drivers.sql")


def dead_entry(row: Row) -> DeadLetterEntry:
    """Return a ``dead_letters`` row as an entry (``failed_at`` in epoch seconds)."""
    return DeadLetterEntry(
        queue=str(row[1]),
        body=bytes(row[2]),
        task_id=str(row[3]),
        task_name=str(row[4]),
        error_type=str(row[5]),
        error_message=str(row[6]),
        attempts=int(row[7]),
        failed_at=float(row[8]),
    )


def _fresh(queue: str, row: Row, rewrite: Callable[[bytes], bytes] | None) -> Outgoing | None:
    body = bytes(row[2])
    if rewrite is not None:
        try:
            body = rewrite(body)
        except Exception as exc:  # that entry stays dead-lettered
            logger.warning("requeue_dead: kept task %s: %s", row[3], exc)
            return None
    return Outgoing(queue, body, 0.0, float(row[9]), str(row[3]))


async def requeue(
    session: Session,
    queue: str,
    task_ids: Sequence[str] | None,
    rewrite: Callable[[bytes], bytes] | None,
    checked: Callable[[Outgoing], dict[str, Any]],
) -> int:
    """Move dead letters of ``queue`` back as fresh pending rows, inside ``session``'s transaction.

    Args:
        session: a session inside a transaction.
        queue: the queue whose dead letters move.
        task_ids: only these (``None``: all).
        rewrite: returns the body to store instead (an entry it raises for stays).
        checked: turns a message into ``enqueue`` parameters (and checks its size).

    Returns:
        How many moved.

    """
    wanted = None if task_ids is None else set(task_ids)
    rows = await session.fetch("lock_dead_letters", {"queue": queue})
    chosen = [
        (row, message)
        for row in rows
        if wanted is None or str(row[3]) in wanted
        if (message := _fresh(queue, row, rewrite)) is not None
    ]
    if not chosen:
        return 0
    await session.execute_many("enqueue", [checked(message) for _, message in chosen])
    await session.execute_many("delete_dead", [{"id": row[0]} for row, _ in chosen])
    return len(chosen)
