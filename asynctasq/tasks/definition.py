"""What a task carries, and how the worker calls it.

A function task and a task class look the same to the worker: a :class:`TaskDefinition`
whose ``invoke(args, kwargs)`` returns an :class:`Invocation` — an object with
``execute()``, ``should_retry(exc)`` and ``failed(exc)``. A task class's instance is its
own invocation; a function task gets a small :class:`FunctionCall`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import attrs

from asynctasq.tasks.options import TaskOptions

Mode = Literal["async", "sync", "async_process", "sync_process"]
"""How a task runs: on the worker's loop, in a thread, or in the process pool."""

ASYNC_MODES: frozenset[str] = frozenset({"async", "async_process"})
"""Modes whose ``execute()`` (and ``failed()``) return an awaitable."""

PROCESS_MODES: frozenset[str] = frozenset({"async_process", "sync_process"})
"""Modes whose body runs in a pool process (``process=True``, the ``*ProcessTask`` bases)."""


class Invocation(Protocol):
    """One execution of a task with its arguments bound."""

    def execute(self) -> Any:
        """Run the task body: a coroutine for async modes, the result for sync modes."""

    def should_retry(self, exc: BaseException) -> bool:
        """Return False to stop retrying after ``exc`` (it can only reduce attempts)."""

    def failed(self, exc: BaseException) -> Any:
        """Called once after the last attempt failed (awaitable for async modes)."""


@attrs.frozen
class TaskDefinition:
    """A task: its name, how it runs, and how to call it (what a worker's registry holds).

    Attributes:
        name: the task name, ``module:qualname`` with ``__main__`` replaced by the
            script's importable module name (SPEC §3).
        mode: ``"async"``, ``"sync"``, ``"async_process"`` or ``"sync_process"``.
        options: the decorator's arguments or the class's ``config``.
        invoke: ``invoke(args, kwargs)`` binds arguments and returns an :class:`Invocation`.
        import_error: why a worker could not import this task's module (a task defined in a
            ``__main__`` that has no importable name), or ``""``; dispatch refuses it.
        module: the importable name of the module defining the task (``__main__`` replaced
            as in ``name``), or ``""`` when it has none; pool processes import it by name.
        qualname: the function's or class's ``__qualname__`` (``<locals>`` in it means the
            task was defined inside a function, where a pool process cannot find it).
    """

    name: str
    mode: Mode
    options: TaskOptions
    invoke: Callable[[tuple[Any, ...], Mapping[str, Any]], Invocation] = attrs.field(eq=False)
    import_error: str = ""
    module: str = ""
    qualname: str = ""


class FunctionCall:
    """The invocation of a function task: the function with its arguments."""

    __slots__ = ("args", "function", "kwargs")

    def __init__(
        self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def execute(self) -> Any:
        """Call the function (returns its coroutine for ``async def`` tasks)."""
        return self.function(*self.args, **self.kwargs)

    def should_retry(self, exc: BaseException) -> bool:
        """Function tasks always allow a retry while attempts remain."""
        return True

    def failed(self, exc: BaseException) -> None:
        """Function tasks have no ``failed`` hook."""
