"""Tasks taking SQLAlchemy models; each records what it saw in ``SEEN``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_object_session

from asynctasq import task
from tests.integration.orm.pg_models import Ticket, User

SEEN: list[Any] = []


@task(max_attempts=2, retry_delay=0)
async def count_orders(user: User) -> int:
    orders = await user.awaitable_attrs.orders  # lazy relationship, loaded inside the task
    SEEN.append((user.name, user.updated_at, len(orders)))
    return len(orders)


@task
async def holders(tickets: list[Ticket], by_seat: dict[str, Ticket]) -> None:
    SEEN.append(([t.holder for t in tickets], {seat: t.holder for seat, t in by_seat.items()}))


@task
async def touch(user: User, when: dt.datetime) -> None:
    user.updated_at = when
    session = async_object_session(user)
    assert session is not None
    await session.commit()
    SEEN.append(user.id)


PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@task(max_attempts=1)
async def cut_off(user: User, fail: bool) -> str:
    """End this task's own database session from outside, then return (or raise).

    The worker's ``session.close()`` after it then fails (the connection is gone), as it
    does when ``idle_in_transaction_session_timeout`` or a network drop ends a session.
    """
    session = async_object_session(user)
    assert session is not None
    pid = await session.scalar(text("SELECT pg_backend_pid()"))  # opens a transaction
    other = await asyncpg.connect(PG_DSN)
    try:
        await other.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await other.close()
    SEEN.append(pid)
    if fail:
        raise LookupError(f"the task's own failure (user {user.id})")
    return user.name


@task(max_attempts=1)
async def session_state(user: User, application_name: str) -> None:
    """Record the state PostgreSQL reports for the worker's session while the task runs."""
    other = await asyncpg.connect(PG_DSN)
    try:
        rows = await other.fetch(
            "SELECT state FROM pg_stat_activity WHERE application_name = $1", application_name
        )
    finally:
        await other.close()
    SEEN.append((user.name, sorted(row["state"] for row in rows)))
