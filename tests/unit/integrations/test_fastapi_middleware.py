"""The ASGI middleware and dependencies, driven as plain ASGI calls (no server, no broker)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.requests import HTTPConnection

from asynctasq import ConfigError, Handle, configured, context, current_handle
from asynctasq.config.records import Config
from asynctasq.integrations.fastapi import (
    AsyncTasQMiddleware,
    app_handle,
    asynctasq_lifespan,
    get_handle,
)

Scope = dict[str, Any]


async def receive() -> dict[str, Any]:
    return {"type": "http.request"}


async def send(message: dict[str, Any]) -> None:
    del message


def recorder(seen: list[Any]) -> Any:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(context.current())

    return app


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_a_request_runs_with_the_lifespan_handle_current_and_it_is_reset_after(
    kind: str,
) -> None:
    handle, seen = Handle(Config()), []
    middleware = AsyncTasQMiddleware(recorder(seen))
    await middleware({"type": kind, "state": {"asynctasq": handle}}, receive, send)
    assert seen == [handle]
    assert context.current() is None


@pytest.mark.anyio
async def test_the_handle_on_app_state_is_used_when_the_lifespan_state_is_absent() -> None:
    handle, seen = Handle(Config()), []
    app = SimpleNamespace(state=SimpleNamespace(asynctasq=handle))
    await AsyncTasQMiddleware(recorder(seen))({"type": "http", "app": app}, receive, send)
    assert seen == [handle]


@pytest.mark.anyio
async def test_a_handle_given_to_the_middleware_wins() -> None:
    mine, other, seen = Handle(Config()), Handle(Config()), []
    middleware = AsyncTasQMiddleware(recorder(seen), handle=mine)
    await middleware({"type": "http", "state": {"asynctasq": other}}, receive, send)
    assert seen == [mine]


@pytest.mark.anyio
async def test_lifespan_messages_and_apps_without_a_handle_pass_through() -> None:
    seen: list[Any] = []
    async with configured(driver="memory") as current:
        await AsyncTasQMiddleware(recorder(seen))({"type": "lifespan"}, receive, send)
        await AsyncTasQMiddleware(recorder(seen))({"type": "http"}, receive, send)
    assert seen == [current, current]


def test_the_handle_dependency_says_how_to_set_asynctasq_up() -> None:
    connection = HTTPConnection({"type": "http", "headers": []})
    assert app_handle(connection.scope) is None
    with pytest.raises(ConfigError, match=r"pass lifespan=asynctasq_lifespan\(...\)"):
        get_handle(connection)


@pytest.mark.anyio
async def test_a_task_that_does_not_see_the_lifespan_handle_is_told_about_the_middleware() -> None:
    app = SimpleNamespace(state=SimpleNamespace())
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:  # a server runs the lifespan in a task of its own
        async with asynctasq_lifespan({"driver": "memory"}, env_file=None)(app):
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(serve())
    await started.wait()
    with pytest.raises(ConfigError, match=r"init\(\) first .*add app.add_middleware\("):
        current_handle()
    stop.set()
    await lifespan
