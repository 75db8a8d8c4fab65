"""Tortoise models as task arguments against a real PostgreSQL; Tortoise set up by the worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from tortoise import Tortoise
from tortoise.transactions import in_transaction

from asynctasq import SerializationError, configured, run_worker
from tests.integration.conftest import require
from tests.integration.orm import tortoise_tasks as tasks
from tests.integration.orm.tortoise_models import SUFFIX, Author, Book

T = TypeVar("T")
DB_URL = "postgres://postgres@127.0.0.1:5432/test"
MODULES = {"models": ["tests.integration.orm.tortoise_models"]}
SEED_FORM = {"db_url": DB_URL, "modules": MODULES}  # as seed/configuration.md shows it
CONFIG_FORM = {
    "connections": {"default": DB_URL},
    "apps": {"models": {"models": MODULES["models"], "default_connection": "default"}},
}


async def apart(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with Tortoise initialised in a task of its own, closed after.

    Tortoise keeps its state in a ContextVar: set up this way, the test's own context (and
    so the worker's tasks) never sees it; the worker must initialise Tortoise itself.
    """

    async def run() -> T:
        await Tortoise.init(db_url=DB_URL, modules=MODULES)
        try:
            return await work()
        finally:
            await Tortoise.close_connections()

    return await asyncio.create_task(run())


@pytest.fixture
async def tables() -> AsyncIterator[None]:
    require("PostgreSQL", "127.0.0.1", 5432)
    await apart(lambda: Tortoise.generate_schemas(safe=True))
    tasks.SEEN.clear()
    yield

    async def drop() -> None:
        async with in_transaction() as connection:
            for table in (f"h18_tt_book_{SUFFIX}", f"h18_tt_author_{SUFFIX}"):
                await connection.execute_script(f'DROP TABLE IF EXISTS "{table}"')

    await apart(drop)


async def new_author(author_id: int, name: str, *titles: str) -> Author:
    async def create() -> Author:
        author = await Author.create(id=author_id, name=name)
        for index, title in enumerate(titles):
            await Book.create(id=author_id * 100 + index, title=title, author=author)
        return author

    return await apart(create)


async def change(work: Callable[[], Awaitable[Any]]) -> None:
    await apart(work)


@pytest.mark.anyio
@pytest.mark.parametrize("form", [SEED_FORM, CONFIG_FORM], ids=["db_url", "config"])
@pytest.mark.usefixtures("tables")
async def test_the_worker_initialises_tortoise_and_loads_the_current_row(
    form: dict[str, Any],
) -> None:
    author = await new_author(1, "before", "b1", "b2")
    async with configured(driver="memory", tortoise_orm=form) as handle:
        await tasks.titles(author).dispatch()
        await change(lambda: Author.filter(id=1).update(name="after"))
        assert not Tortoise.is_inited()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    assert tasks.SEEN == [("after", ["b1", "b2"])]
    assert not Tortoise.is_inited()  # the worker closed what it opened


@pytest.mark.anyio
@pytest.mark.usefixtures("tables")
async def test_a_deleted_row_is_dead_lettered_with_model_not_found() -> None:
    author = await new_author(2, "gone")
    async with configured(driver="memory", tortoise_orm=SEED_FORM) as handle:
        await tasks.titles(author).dispatch()
        await change(lambda: Author.filter(id=2).delete())
        stats = await run_worker(handle, tasks=[tasks], max_tasks=2)
        [entry] = await (await handle.driver()).dead_letters("default")
    assert (stats.retried, stats.dead_lettered) == (1, 1)
    assert entry.error_type == "ModelNotFoundError"
    assert "Author with primary key 2, passed as args[0], no longer exists" in entry.error_message


@pytest.mark.anyio
@pytest.mark.usefixtures("tables")
async def test_a_list_of_models_loads() -> None:
    one, two = await new_author(3, "one"), await new_author(4, "two")
    async with configured(driver="memory", tortoise_orm=SEED_FORM) as handle:
        await tasks.names([one, two], lead=two).dispatch()
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    assert tasks.SEEN == [(["one", "two"], "two")]


@pytest.mark.anyio
@pytest.mark.usefixtures("tables")
async def test_an_unsaved_model_is_refused_at_dispatch() -> None:
    async def attempt() -> None:
        async with configured(driver="memory"):
            with pytest.raises(SerializationError, match=r"args\[0\].*not saved yet"):
                await tasks.titles(Author(name="new")).dispatch()

    await apart(attempt)


@pytest.mark.anyio
@pytest.mark.usefixtures("tables")
async def test_a_worker_without_tortoise_settings_fails_the_task_saying_so() -> None:
    author = await new_author(5, "x")
    async with configured(driver="memory") as handle:
        await tasks.names([author], lead=author).max_attempts(1).dispatch()
        await run_worker(handle, tasks=[tasks], max_tasks=1)
        [entry] = await (await handle.driver()).dead_letters("default")
    assert entry.error_type == "ConfigError"
    assert "Tortoise is not initialised in this worker" in entry.error_message
    assert "set tortoise_orm" in entry.error_message


@pytest.mark.anyio
@pytest.mark.usefixtures("tables")
async def test_the_worker_initialises_tortoise_that_the_app_opened_and_closed_before() -> None:
    """Tortoise 1.x stays ``is_inited()`` after ``close_connections()``, with no connection."""
    author = await new_author(6, "reopened", "r1")
    context = await Tortoise.init(db_url=DB_URL, modules=MODULES)  # the app's own use of it
    try:
        await Tortoise.close_connections()
        async with configured(driver="memory", tortoise_orm=SEED_FORM) as handle:
            await tasks.titles(author).dispatch()
            stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
            dead = await (await handle.driver()).dead_letters("default")
        assert (stats.succeeded, dead) == (1, [])
        assert tasks.SEEN == [("reopened", ["r1"])]
    finally:
        await Tortoise.close_connections()
        context.__exit__(None, None, None)  # this test's context no longer has Tortoise
    assert not Tortoise.is_inited()
