"""The one piece of module-level state: the current handle, in a ContextVar.

asyncio tasks copy the context when they are created and ``asyncio.to_thread`` runs the
function in a copy of the caller's context, so both see the handle current where they
were started. A sibling task created earlier (a web server's request task versus its
lifespan task) or a child process does not: integrations pass the handle explicitly.

The same ContextVar also carries the task execution a worker is running in this context
(for ``current_task()``), so there is still exactly one: its value is the pair
``(handle, running execution)``, and each setter keeps the other half.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

_CURRENT: ContextVar[tuple[Any, Any]] = ContextVar("asynctasq_current", default=(None, None))


def current() -> Any:
    """Return the current handle, or ``None`` when ``init()`` has not run in this context."""
    return _CURRENT.get()[0]


def make_current(handle: Any) -> Token[tuple[Any, Any]]:
    """Make ``handle`` current and return the token that :func:`restore` takes."""
    return _CURRENT.set((handle, _CURRENT.get()[1]))


def restore(token: Token[tuple[Any, Any]]) -> None:
    """Put back what was current before the call that returned ``token``."""
    _CURRENT.reset(token)


def running() -> Any:
    """Return the task execution the worker runs in this context, or ``None`` outside one."""
    return _CURRENT.get()[1]


def make_running(execution: Any) -> Token[tuple[Any, Any]]:
    """Record ``execution`` as running in this context (the handle stays); return the token."""
    return _CURRENT.set((_CURRENT.get()[0], execution))
