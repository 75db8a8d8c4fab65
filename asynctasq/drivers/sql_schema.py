"""The SQL drivers' schema: checked when a driver opens, created by ``asynctasq migrate``.

Both sides read the same catalog query (``schema_objects``: one ``"table task_queue"``-style
label per object that exists) and compare it with the connector's ``expected_objects``.
"""

from __future__ import annotations

import contextlib

from asynctasq.drivers.sql_connector import Connector, Session, migrate_hint
from asynctasq.errors import DriverError

CHECKS = (
    "check_queue_table",
    "check_dead_letter_table",
    "check_workers_table",
    "check_completed_table",
)
"""Queries naming every column of each table (they fail on a table missing a column)."""


async def check_schema(db: Connector) -> None:
    """Raise unless every table, index (and trigger) exists with every column the queries use.

    Raises:
        DriverError: something is missing; the message names it and says to run
            ``asynctasq migrate --driver <name>``.
        Exception: the client's error for a missing column (the connector translates it
            with the same hint).

    """
    found = {str(row[0]) for row in await db.fetch("schema_objects", {})}
    missing = [label for label in db.expected_objects if label not in found]
    if missing:
        detail = f"the schema is missing {', '.join(missing)}; {migrate_hint(db.name)}"
        raise DriverError(db.name, "open", detail)
    for check in CHECKS:
        await db.fetch(check, {})


async def migrate_schema(db: Connector, session: Session) -> list[str]:
    """Create what is missing, under the schema lock, inside ``session``'s transaction.

    Returns:
        One line per object, in creation order: ``"created table task_queue"`` or
        ``"table task_queue already exists"``.

    """
    await session.fetch("lock_schema", {})
    try:
        before = {str(row[0]) for row in await session.fetch("schema_objects", {})}
        for step in db.migration_steps:
            await session.execute(step, {})
        after = {str(row[0]) for row in await session.fetch("schema_objects", {})}
    except BaseException:
        # The first error is the one to report: after it PostgreSQL refuses every further
        # statement of the transaction ("current transaction is aborted"), the unlock too
        # (its lock ends with the transaction anyway; MySQL's with the connection).
        with contextlib.suppress(*db.failures):
            await session.fetch("unlock_schema", {})
        raise
    await session.fetch("unlock_schema", {})
    return [
        f"{label} already exists" if label in before else f"created {label}"
        for label in db.expected_objects
        if label in before or label in after
    ]
