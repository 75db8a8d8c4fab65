"""The one piece of module-level state: the current handle, in a ContextVar.

asyncio tasks copy the context when they are created and ``asyncio.to_thread`` runs the
function in a copy of the caller's context, so both see the handle current where they
were started. A sibling task created earlier (a web server's request task versus its
lifespan task) or a child process does not: integrations pass the handle explicitly.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

_CURRENT: ContextVar[Any] = ContextVar("asynctasq_current_handle", default=None)


def current() -> Any:
    """Return the current handle, or ``None`` when ``init()`` has not run in this context."""
    return _CURRENT.get()


def make_current(handle: Any) -> Token[Any]:
    """Make ``handle`` current and return the token that :func:`restore` takes."""
    return _CURRENT.set(handle)


def restore(token: Token[Any]) -> None:
    """Put back the handle that was current before :func:`make_current` returned ``token``."""
    _CURRENT.reset(token)
