"""FastAPI: the lifespan builds the handle, each request sees it, a worker runs what a route sent.

The app's lifespan runs in an asyncio task of its own, as under a real server, so a
request does not inherit the ContextVar ``init()`` set there (SPEC §8); httpx's
ASGITransport does not run lifespans, so the test runs it that way itself.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis.asyncio as aredis
import uvicorn
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from asynctasq import ConfigError, configured, run_worker
from asynctasq.integrations.fastapi import STATE_KEY
from tests.integration.orm import pg_tasks as tasks
from tests.integration.orm.fastapi_app import build_app
from tests.integration.orm.pg_models import Order, User

MEMORY = {"driver": "memory"}


@asynccontextmanager
async def lifespan_apart(app: FastAPI) -> AsyncIterator[None]:
    """Run the app's lifespan in a task of its own until the block ends."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    try:
        yield
    finally:
        stop.set()
        await task


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


async def add_user(engine: AsyncEngine, user_id: int, orders: int) -> None:
    async with AsyncSession(engine) as session:
        session.add(User(id=user_id, name="before", orders=[Order() for _ in range(orders)]))
        await session.commit()


async def rename(engine: AsyncEngine, user_id: int, name: str) -> None:
    async with AsyncSession(engine) as session:
        await session.execute(update(User).where(User.id == user_id).values(name=name))
        await session.commit()


@pytest.mark.anyio
async def test_a_route_dispatches_a_model_that_a_worker_loads_as_it_is_now(
    pg_engine: AsyncEngine,
) -> None:
    await add_user(pg_engine, 1, orders=2)
    app = build_app(pg_engine, MEMORY)
    async with lifespan_apart(app), client(app) as http:
        response = await http.post("/users/1/count-orders")
        assert response.status_code == 200, response.text
        await rename(pg_engine, 1, "after")
        handle = getattr(app.state, STATE_KEY)
        stats = await run_worker(handle, tasks=[tasks], max_tasks=1)
    assert stats.succeeded == 1
    assert [(name, count) for name, _, count in tasks.SEEN] == [("after", 2)]


@pytest.mark.anyio
async def test_without_the_middleware_a_route_is_told_to_add_it(
    pg_engine: AsyncEngine,
) -> None:
    await add_user(pg_engine, 2, orders=0)
    app = build_app(pg_engine, MEMORY, middleware=False)
    async with lifespan_apart(app), client(app) as http:
        with pytest.raises(ConfigError) as raised:
            await http.post("/users/2/count-orders")
    assert str(raised.value).startswith("asynctasq is not initialised: call asynctasq.init()")
    assert "add app.add_middleware(AsyncTasQMiddleware)" in str(raised.value)


@pytest.mark.anyio
async def test_dependencies_give_a_route_the_handle_and_its_driver(pg_engine: AsyncEngine) -> None:
    app = build_app(pg_engine, MEMORY, middleware=False)  # dependencies need no middleware
    async with lifespan_apart(app), client(app) as http:
        response = await http.get("/asynctasq")
    assert response.json() == {"configured": "memory", "driver": "memory"}


@pytest.mark.anyio
async def test_the_lifespan_closes_the_handle_and_restores_the_context(
    pg_engine: AsyncEngine,
) -> None:
    app = build_app(pg_engine, MEMORY)
    async with app.router.lifespan_context(app) as state:
        handle = state[STATE_KEY]
        assert getattr(app.state, STATE_KEY) is handle
        await handle.driver()
        assert handle.has_services()
    assert not handle.has_services()
    with pytest.raises(ConfigError):
        await tasks.count_orders(User(id=1, name="x")).dispatch()  # no handle left current


@pytest.mark.anyio
async def test_under_uvicorn_a_route_dispatches_to_redis_for_a_worker(
    pg_engine: AsyncEngine, redis_url: str
) -> None:
    await add_user(pg_engine, 3, orders=1)
    queue = f"h18-{uuid.uuid4().hex[:12]}"
    broker = {"driver": "redis", "redis": {"url": redis_url}, "task_defaults": {"queue": queue}}
    started = asyncio.Event()

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        started.set()  # runs inside asynctasq's lifespan, after the handle is built
        yield {"mine": "kept"}

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # connections wait in the backlog until uvicorn accepts them
    port = listener.getsockname()[1]
    app = build_app(pg_engine, broker, lifespan=app_lifespan)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        await started.wait()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await http.post("/users/3/count-orders")
        assert response.status_code == 200, response.text
        await rename(pg_engine, 3, "after")
        async with configured({**broker, "sqlalchemy_engine": pg_engine}) as worker:
            stats = await run_worker(worker, tasks=[tasks], queues=[queue], max_tasks=1)
        assert stats.succeeded == 1
        assert [(name, count) for name, _, count in tasks.SEEN] == [("after", 1)]
    finally:
        server.should_exit = True
        await serving
        listener.close()
        keys = aredis.Redis.from_url(redis_url)
        await keys.delete(*[key async for key in keys.scan_iter(f"queue:{queue}*")] or ["-"])
        await keys.aclose()
