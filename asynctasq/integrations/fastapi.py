"""FastAPI (and any Starlette or plain ASGI app): the handle for the app's life and each request.

::

    from fastapi import FastAPI
    from asynctasq.integrations.fastapi import AsyncTasQMiddleware, DriverDep, asynctasq_lifespan

    app = FastAPI(lifespan=asynctasq_lifespan({"driver": "redis"}))
    app.add_middleware(AsyncTasQMiddleware)

    @app.post("/welcome/{email}")
    async def welcome(email: str) -> dict[str, str]:
        return {"task_id": await send_welcome(email).dispatch()}

Why the middleware: ``init()`` run in the lifespan makes the handle current only in the
lifespan's own asyncio task; the server runs each request in another task, which does not
see it (SPEC §8). :class:`AsyncTasQMiddleware` makes the app's handle current for every
HTTP and WebSocket request (and resets it after), so ``await task(...).dispatch()`` works
in routes, their dependencies and background tasks. Without it, ``dispatch()`` in a route
raises ``ConfigError`` ("call asynctasq.init() first ... add AsyncTasQMiddleware"). (The
lifespan cannot make the handle visible itself: a ContextVar set in one task never
reaches a sibling task, and Starlette's middleware stack is built before the lifespan
starts.)

Where the handle is kept: :func:`asynctasq_lifespan` yields it as lifespan state
(``request.state.asynctasq``) and also sets ``app.state.asynctasq``, which is what a test
sees when it runs the lifespan itself (``httpx.ASGITransport`` does not run it)::

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
            await c.post("/welcome/a@example.com")

Routes that need the handle or its driver declare :data:`HandleDep` / :data:`DriverDep`.

Source: SPEC §8.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from os import PathLike
from typing import Annotated, Any

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from asynctasq import context
from asynctasq.config.records import Config
from asynctasq.drivers.protocol import Driver
from asynctasq.errors import ConfigError
from asynctasq.handle import Handle, init
from asynctasq.orm import ModelLoader

STATE_KEY = "asynctasq"
"""The name of the handle in lifespan state and on ``app.state``."""

NOT_SET_UP = (
    "asynctasq is not set up for this app: pass lifespan=asynctasq_lifespan(...) to the app "
    "(or give AsyncTasQMiddleware a handle)"
)

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]
"""A lifespan function: ``lifespan(app)`` returns an async context manager."""


def asynctasq_lifespan(
    config: Mapping[str, Any] | Config | None = None,
    *,
    event_emitters: Iterable[Any] | None = None,
    tortoise_config: dict[str, Any] | None = None,
    env_file: str | PathLike[str] | None = ".env",
    lifespan: Lifespan | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """Return a lifespan function that builds the app's handle at startup and closes it after.

    At startup it calls :func:`asynctasq.init` with these arguments (configuration errors
    stop the app from starting), keeps the handle on ``app.state.asynctasq`` and yields
    ``{"asynctasq": handle}`` as lifespan state, then enters ``lifespan`` (your own, if
    any; a mapping it yields is merged into the state, anything else is ignored, e.g.
    ``lambda app: RegisterTortoise(app, ...)`` which yields itself). At shutdown, in
    reverse order: your lifespan exits, the handle's connections are closed, and
    ``sqlalchemy_engine`` (if set) is disposed.

    Args:
        config: code settings, as for :func:`asynctasq.init`.
        event_emitters: extra event emitters, as for :func:`asynctasq.init`.
        tortoise_config: Tortoise ORM configuration, as for :func:`asynctasq.init`.
        env_file: the ``.env`` file to read (``None``: none).
        lifespan: the app's own lifespan function to run inside this one.

    Returns:
        ``lifespan(app)``, for ``FastAPI(lifespan=...)`` or ``Starlette(lifespan=...)``.
    """

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[dict[str, Any]]:
        previous = context.current()
        handle = init(
            config,
            event_emitters=event_emitters,
            tortoise_config=tortoise_config,
            env_file=env_file,
        )
        models = ModelLoader(handle.config)  # checks sqlalchemy_engine at startup
        state = getattr(app, "state", None)
        if state is not None:
            setattr(state, STATE_KEY, handle)
        try:
            if lifespan is None:
                yield {STATE_KEY: handle}
            else:
                async with lifespan(app) as inner:  # e.g. Tortoise's RegisterTortoise
                    mine = dict(inner) if isinstance(inner, Mapping) else {}
                    yield {**mine, STATE_KEY: handle}
        finally:
            try:
                await handle.aclose()
            finally:
                await models.aclose()
                context.make_current(previous)

    return run


def app_handle(scope: Scope) -> Handle | None:
    """Return the handle :func:`asynctasq_lifespan` set up for this request's app, or ``None``.

    Looks in the request's lifespan state, then on ``app.state``.
    """
    found = scope.get("state", {}).get(STATE_KEY)
    if found is None:
        found = getattr(getattr(scope.get("app"), "state", None), STATE_KEY, None)
    return found if isinstance(found, Handle) else None


class AsyncTasQMiddleware:
    """Pure ASGI middleware making the app's handle current for each HTTP/WebSocket request.

    Args:
        app: the ASGI app it wraps (``app.add_middleware`` passes it).
        handle: the handle to use; ``None`` (the default): the one
            :func:`asynctasq_lifespan` set up (see :func:`app_handle`). With neither, a
            request runs with whatever handle is current (none, unless ``init()`` ran
            before the server started).
    """

    def __init__(self, app: ASGIApp, handle: Handle | None = None) -> None:
        self.app = app
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with the handle current; other scopes (lifespan) pass through."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        handle = self.handle or app_handle(scope)
        if handle is None:
            await self.app(scope, receive, send)
            return
        token = context.make_current(handle)
        try:
            await self.app(scope, receive, send)
        finally:
            context.restore(token)


def get_handle(connection: HTTPConnection) -> Handle:
    """Return the app's handle (a FastAPI dependency; see :data:`HandleDep`).

    Raises:
        ConfigError: the app has no handle: no :func:`asynctasq_lifespan`, no middleware
            handle and none current.
    """
    found = app_handle(connection.scope) or context.current()
    if not isinstance(found, Handle):
        raise ConfigError(NOT_SET_UP)
    return found


async def get_driver(handle: Annotated[Handle, Depends(get_handle)]) -> Driver:
    """Return the app's default driver, opened (a FastAPI dependency; see :data:`DriverDep`).

    Raises:
        ConfigError: no handle (see :func:`get_handle`), or the driver cannot be built.
        DriverError: the broker cannot be reached.
    """
    return await handle.driver()


HandleDep = Annotated[Handle, Depends(get_handle)]
"""A route parameter ``handle: HandleDep`` receives the app's :class:`~asynctasq.Handle`."""

DriverDep = Annotated[Driver, Depends(get_driver)]
"""A route parameter ``driver: DriverDep`` receives the app's opened default driver."""

__all__ = [
    "STATE_KEY",
    "AsyncTasQMiddleware",
    "DriverDep",
    "HandleDep",
    "Lifespan",
    "app_handle",
    "asynctasq_lifespan",
    "get_driver",
    "get_handle",
]
