"""The worker loads models again before each run (a sync SQLite engine here: no network)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, update
from sqlalchemy.orm import Session

from asynctasq import ConfigError, SerializationError, configured, run_worker
from asynctasq.codec.refs import ModelRef
from asynctasq.worker.shutdown import Shutdown
from tests.unit.orm import sa_tasks as tasks
from tests.unit.orm.sa_models import Author, Base, Book, Seat

AUTHOR = "tests.unit.orm.sa_models:Author"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    found = create_engine(f"sqlite:///{tmp_path / 'unit.db'}")
    Base.metadata.create_all(found)
    tasks.SEEN.clear()
    yield found
    found.dispose()


def add(engine: Engine, *models: object) -> None:
    with Session(engine, expire_on_commit=False) as session:
        session.add_all(models)
        session.commit()


def rename(engine: Engine, author_id: int, name: str) -> None:
    with Session(engine) as session:
        session.execute(update(Author).where(Author.id == author_id).values(name=name))
        session.commit()


async def dead_letters(handle: object) -> list[tuple[str, str]]:
    driver = await handle.driver()  # type: ignore[attr-defined]
    return [(e.error_type, e.error_message) for e in await driver.dead_letters("default")]


@pytest.mark.anyio
async def test_the_task_sees_the_row_as_it_is_when_it_runs(engine: Engine) -> None:
    author = Author(id=1, name="before", books=[Book(id=10), Book(id=11)])
    add(engine, author)
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.describe(author).dispatch()
        rename(engine, 1, "after")
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    assert tasks.SEEN == [("after", [10, 11])]  # a lazy relationship loaded inside the task


@pytest.mark.anyio
async def test_a_sync_task_gets_its_models_in_its_thread(engine: Engine) -> None:
    author = Author(id=2, name="t", books=[Book(id=20)])
    add(engine, author)
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.describe_in_thread(author).dispatch()
        await tasks.CountBooks(author=author).dispatch()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=2, concurrency=1)
    assert stats.succeeded == 2
    assert tasks.SEEN == [("t", 1), 1]


@pytest.mark.anyio
async def test_composite_keys_and_models_inside_containers_load(engine: Engine) -> None:
    a1, a2, b1 = (
        Seat(hall="A", number=1, label="a1"),
        Seat(hall="A", number=2, label="a2"),
        Seat(hall="B", number=1, label="b1"),
    )
    add(engine, a1, a2, b1)
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.seats({"A": [a1, a2], "B": [b1]}, first=a2).dispatch()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    assert tasks.SEEN == [({"A": ["a1", "a2"], "B": ["b1"]}, "a2")]


@pytest.mark.anyio
async def test_a_deleted_row_fails_every_attempt_with_model_not_found(engine: Engine) -> None:
    author = Author(id=3, name="gone")
    add(engine, author)
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.describe(author).dispatch()
        with Session(engine) as session:
            session.delete(session.get(Author, 3))
            session.commit()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=2)
        dead = await dead_letters(handle)
    assert (stats.retried, stats.dead_lettered) == (1, 1)  # the task's max_attempts=2 applied
    [(error_type, text)] = dead
    assert error_type == "ModelNotFoundError"
    assert text == f"{AUTHOR} with primary key 3, passed as args[0], no longer exists (deleted)"
    assert tasks.SEEN == []


@pytest.mark.anyio
async def test_the_failed_hook_of_a_task_whose_model_is_gone_sees_the_reference(
    engine: Engine,
) -> None:
    author = Author(id=4, name="x")
    add(engine, author)
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.Rename(author=author, name="y").dispatch()
        with Session(engine) as session:
            session.delete(session.get(Author, 4))
            session.commit()
        await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert [("failed", "ModelNotFoundError", ModelRef("sqlalchemy", AUTHOR, (4,)))] == tasks.SEEN


@pytest.mark.anyio
async def test_what_a_task_does_not_commit_is_rolled_back(engine: Engine) -> None:
    author = Author(id=5, name="kept")
    add(engine, author)
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.Rename(author=author, name="changed").dispatch()
        await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert tasks.SEEN == ["changed"]
    with Session(engine) as session:
        assert session.get(Author, 5).name == "kept"  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_a_worker_without_an_engine_fails_the_task_saying_so(engine: Engine) -> None:
    author = Author(id=6, name="x")
    add(engine, author)
    async with configured(driver="memory") as handle:
        await tasks.describe(author).max_attempts(1).dispatch()
        await run_worker(handle, tasks=[tasks], max_tasks=1)
        dead = await dead_letters(handle)
    [(error_type, text)] = dead
    assert error_type == "ConfigError"
    assert "this worker has no sqlalchemy_engine" in text


@pytest.mark.anyio
async def test_should_retry_is_asked_when_the_model_is_gone_and_can_stop_the_retries(
    engine: Engine,
) -> None:
    author = Author(id=7, name="x")
    add(engine, author)
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.SendReceipt(author=author).dispatch()
        with Session(engine) as session:
            session.delete(session.get(Author, 7))
            session.commit()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
        [(error_type, _)] = await dead_letters(handle)
    assert (stats.retried, stats.dead_lettered, error_type) == (0, 1, "ModelNotFoundError")
    ref = ModelRef("sqlalchemy", AUTHOR, (7,))
    assert [("should_retry", "ModelNotFoundError", ref)] == tasks.SEEN


@pytest.mark.anyio
async def test_a_class_not_imported_in_the_worker_is_never_imported_nor_retried(
    engine: Engine,
) -> None:
    ref = ModelRef("sqlalchemy", "some_module_nobody_imported:User", (1,))
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.describe(ref).dispatch()  # type: ignore[arg-type]
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
        [(error_type, text)] = await dead_letters(handle)
    assert (stats.retried, stats.dead_lettered) == (0, 1)  # describe allows 2 attempts
    assert error_type == SerializationError.__name__
    assert "'some_module_nobody_imported:User' is not a SQLAlchemy-mapped class" in text
    assert "not retried" in text
    assert "some_module_nobody_imported" not in sys.modules


@pytest.mark.anyio
async def test_a_class_that_is_not_a_model_is_refused(engine: Engine) -> None:
    ref = ModelRef("sqlalchemy", "tests.unit.orm.sa_tasks:Rename", (1,))
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await tasks.describe(ref).dispatch()  # type: ignore[arg-type]
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
        [(error_type, _)] = await dead_letters(handle)
    assert (stats.retried, error_type) == (0, "SerializationError")


@pytest.mark.anyio
async def test_the_worker_disposes_the_engine_when_it_stops(engine: Engine) -> None:
    pool = engine.pool
    stop = Shutdown()
    stop.request()
    async with configured(driver="memory", sqlalchemy_engine=engine) as handle:
        await run_worker(handle, tasks=[tasks], shutdown=stop, handle_signals=False)
    assert engine.pool is not pool  # dispose() replaced the pool, closing its connections


@pytest.mark.anyio
async def test_a_worker_refuses_an_engine_setting_that_is_not_an_engine() -> None:
    async with configured(driver="memory", sqlalchemy_engine="sqlite://") as handle:
        with pytest.raises(ConfigError, match=r"sqlalchemy_engine = str object"):
            await run_worker(handle, tasks=[tasks], max_tasks=1)
