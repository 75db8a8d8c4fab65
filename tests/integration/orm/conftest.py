"""PostgreSQL for the ORM integration tests: an async engine and this process's tables."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.integration.conftest import require
from tests.integration.orm import pg_models, pg_tasks

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_URL = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/test"


@pytest.fixture
async def pg_engine() -> AsyncIterator[AsyncEngine]:
    """An AsyncEngine on the test database with this process's tables, dropped after."""
    require("PostgreSQL", PG_HOST, PG_PORT)
    engine = create_async_engine(PG_URL)
    async with engine.begin() as connection:
        await connection.run_sync(pg_models.Base.metadata.create_all)
    pg_tasks.SEEN.clear()
    yield engine
    async with engine.begin() as connection:
        await connection.run_sync(pg_models.Base.metadata.drop_all)
    await engine.dispose()
