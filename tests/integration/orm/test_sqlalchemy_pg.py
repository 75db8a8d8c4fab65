"""SQLAlchemy async (asyncpg) models as task arguments against a real PostgreSQL (C23)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from asynctasq import SerializationError, configured, run_worker
from tests.integration.orm import pg_tasks as tasks
from tests.integration.orm.conftest import PG_URL
from tests.integration.orm.pg_models import Base, Order, Ticket, User

LATER = dt.datetime(2031, 1, 2, 3, 4, 5)


async def new_user(engine: AsyncEngine, user_id: int, orders: int) -> User:
    """Create a user with ``orders`` orders and return it detached (its session closed)."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        user = User(id=user_id, name="before", orders=[Order() for _ in range(orders)])
        session.add(user)
        await session.commit()
    return user


@pytest.mark.anyio
async def test_the_worker_loads_the_current_row_and_its_lazy_relationship(
    pg_engine: AsyncEngine,
) -> None:
    user = await new_user(pg_engine, 1, orders=3)
    async with configured(driver="memory", sqlalchemy_engine=pg_engine) as handle:
        await tasks.count_orders(user).dispatch()
        async with AsyncSession(pg_engine) as session:  # changed after dispatch
            await session.execute(
                update(User).where(User.id == 1).values(name="after", updated_at=LATER)
            )
            await session.commit()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    assert tasks.SEEN == [("after", LATER, 3)]


@pytest.mark.anyio
async def test_a_deleted_user_is_dead_lettered_with_model_not_found(
    pg_engine: AsyncEngine,
) -> None:
    user = await new_user(pg_engine, 2, orders=1)
    async with configured(driver="memory", sqlalchemy_engine=pg_engine) as handle:
        await tasks.count_orders(user).dispatch()
        async with AsyncSession(pg_engine) as session:
            await session.execute(delete(Order).where(Order.user_id == 2))
            await session.execute(delete(User).where(User.id == 2))
            await session.commit()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=2)
        driver = await handle.driver()
        [entry] = await driver.dead_letters("default")
    assert (stats.retried, stats.dead_lettered) == (1, 1)
    assert entry.error_type == "ModelNotFoundError"
    assert "User with primary key 2, passed as args[0], no longer exists" in entry.error_message
    assert tasks.SEEN == []


@pytest.mark.anyio
async def test_transient_and_pending_instances_are_refused_at_dispatch(
    pg_engine: AsyncEngine,
) -> None:
    async with configured(driver="memory", sqlalchemy_engine=pg_engine) as handle:
        with pytest.raises(SerializationError, match=r"args\[0\].*not saved yet"):
            await tasks.count_orders(User(name="transient")).dispatch()
        async with AsyncSession(pg_engine) as session:
            pending = User(id=3, name="pending")
            session.add(pending)
            with pytest.raises(SerializationError, match=r"not saved yet"):
                await tasks.count_orders(pending).dispatch()
        driver = await handle.driver()
        assert (await driver.sizes("default")).ready == 0


@pytest.mark.anyio
async def test_composite_keys_in_a_list_and_a_dict_load(pg_engine: AsyncEngine) -> None:
    event = uuid.uuid4()
    async with AsyncSession(pg_engine, expire_on_commit=False) as session:
        a, b = (
            Ticket(event=event, seat="A1", holder="ann"),
            Ticket(event=event, seat="B2", holder="bo"),
        )
        session.add_all([a, b])
        await session.commit()
    async with configured(driver="memory", sqlalchemy_engine=pg_engine) as handle:
        await tasks.holders([a, b], by_seat={"B2": b}).dispatch()
        async with AsyncSession(pg_engine) as session:
            await session.execute(update(Ticket).where(Ticket.seat == "B2").values(holder="cy"))
            await session.commit()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    assert tasks.SEEN == [(["ann", "cy"], {"B2": "cy"})]


@pytest.mark.anyio
async def test_a_task_commits_through_its_own_session(pg_engine: AsyncEngine) -> None:
    user = await new_user(pg_engine, 4, orders=0)
    async with configured(driver="memory", sqlalchemy_engine=pg_engine) as handle:
        await tasks.touch(user, LATER).dispatch()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    async with AsyncSession(pg_engine) as session:
        assert (await session.scalar(select(User.updated_at).where(User.id == 4))) == LATER


@pytest.mark.anyio
async def test_a_task_that_returned_succeeds_though_closing_its_session_fails(
    pg_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    user = await new_user(pg_engine, 5, orders=0)
    async with configured(driver="memory", sqlalchemy_engine=pg_engine) as handle:
        task_id = await tasks.cut_off(user, fail=False).dispatch()
        with caplog.at_level(logging.WARNING, logger="asynctasq.worker"):
            stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
        dead = await (await handle.driver()).dead_letters("default")
    assert (stats.succeeded, stats.dead_lettered, dead) == (1, 0, [])
    [line] = [r.getMessage() for r in caplog.records if "closing its database" in r.getMessage()]
    assert line.startswith(f"task {task_id} tests.integration.orm.pg_tasks:cut_off succeeded,")
    assert line.endswith("it stays succeeded")


@pytest.mark.anyio
async def test_a_failed_task_records_its_own_error_not_the_failed_close(
    pg_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    user = await new_user(pg_engine, 6, orders=0)
    async with configured(driver="memory", sqlalchemy_engine=pg_engine) as handle:
        await tasks.cut_off(user, fail=True).dispatch()
        with caplog.at_level(logging.WARNING, logger="asynctasq.worker"):
            stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
        [entry] = await (await handle.driver()).dead_letters("default")
    assert stats.dead_lettered == 1
    assert (entry.error_type, entry.error_message) == (
        "LookupError",
        "the task's own failure (user 6)",
    )
    [line] = [r.getMessage() for r in caplog.records if "closing its database" in r.getMessage()]
    assert "cut_off failed, but closing its database session failed" in line
    assert line.endswith("its own error is recorded")


@pytest.mark.anyio
async def test_the_read_that_loaded_the_models_is_not_left_open_while_the_task_runs() -> None:
    """The session's connection is 'idle', not 'idle in transaction', once models are loaded.

    A transaction left open for the task's whole run pins a snapshot (vacuum waits) and
    trips ``idle_in_transaction_session_timeout``.
    """
    name = f"h8-{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(
        PG_URL, connect_args={"server_settings": {"application_name": name}}
    )
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    tasks.SEEN.clear()
    try:
        user = await new_user(engine, 7, orders=0)
        async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
            await tasks.session_state(user, name).dispatch()
            stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
        assert stats.succeeded == 1
        assert tasks.SEEN == [("before", ["idle"])]
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
        await engine.dispose()
