"""Tasks taking SQLAlchemy models; each records what it saw in ``SEEN``."""

from __future__ import annotations

import datetime as dt
from typing import Any

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
