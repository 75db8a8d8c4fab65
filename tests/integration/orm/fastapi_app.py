"""A small FastAPI app whose route dispatches a task with a SQLAlchemy model argument."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from asynctasq.integrations.fastapi import (
    AsyncTasQMiddleware,
    DriverDep,
    HandleDep,
    Lifespan,
    asynctasq_lifespan,
)
from tests.integration.orm.pg_models import User
from tests.integration.orm.pg_tasks import count_orders


def build_app(
    engine: AsyncEngine,
    config: dict[str, Any],
    *,
    middleware: bool = True,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """Return the app; ``config`` is asynctasq's (the engine is added to it)."""
    app = FastAPI(
        lifespan=asynctasq_lifespan({**config, "sqlalchemy_engine": engine}, lifespan=lifespan)
    )
    if middleware:
        app.add_middleware(AsyncTasQMiddleware)

    @app.post("/users/{user_id}/count-orders")
    async def count(user_id: int) -> dict[str, str]:
        async with AsyncSession(engine) as session:
            user = await session.get(User, user_id)
        if user is None:
            raise HTTPException(status_code=404)
        return {"task_id": await count_orders(user).dispatch()}

    @app.get("/asynctasq")
    async def info(handle: HandleDep, driver: DriverDep) -> dict[str, str]:
        return {"configured": handle.config.driver, "driver": driver.name}

    return app
