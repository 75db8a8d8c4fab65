"""``run(coro)``: run a coroutine to completion on uvloop when it is installed, else asyncio.

Source: SPEC §1 (``run(coro)``, uvloop when installed).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def has_uvloop() -> bool:
    """Return whether uvloop can be imported (it is not on Windows)."""
    return importlib.util.find_spec("uvloop") is not None


def run(coro: Coroutine[Any, Any, T], *, use_uvloop: bool | None = None) -> T:
    """Run ``coro`` in a new event loop and return its result.

    Args:
        coro: the coroutine, e.g. ``run_worker(handle, queues=["default"])``.
        use_uvloop: ``None`` uses uvloop when installed; ``False`` forces asyncio's loop;
            ``True`` requires uvloop.

    Returns:
        What ``coro`` returns.

    Raises:
        ModuleNotFoundError: ``use_uvloop=True`` and uvloop is not installed.
    """
    if use_uvloop is None:
        use_uvloop = has_uvloop()
    if use_uvloop:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro)
    return asyncio.run(coro)
