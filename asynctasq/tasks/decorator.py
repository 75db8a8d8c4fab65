"""``@task``: turn a function into a task.

::

    @task
    async def resize(path: str, width: int) -> None: ...        # mode "async": on the loop

    @task(queue="reports", max_attempts=5, timeout=60)
    def build_report(day: date) -> str: ...                     # mode "sync": in a thread

    task_id = await resize("a.png", width=200).delay(5).dispatch()

Calling the task returns a :class:`PendingDispatch` (nothing is sent until ``dispatch()``);
the arguments are checked against the function's signature at once, and a type checker
sees them too (``Task[P, R]`` keeps the function's ``ParamSpec``). To run the function
inline, bypassing the queue, call ``resize.run(...)`` (or ``resize.__wrapped__``).

Decorating registers nothing anywhere: the task carries its
:class:`~asynctasq.tasks.definition.TaskDefinition` (``resize.definition``), named
``module:qualname`` (see :mod:`asynctasq.tasks.naming` for scripts run as ``__main__``). A
worker runs it when it is given the task or its module
(``run_worker(handle, tasks=[myapp.tasks])``, ``asynctasq worker --import myapp.tasks``).

``process=True`` selects the process-pool modes (``"async_process"``/``"sync_process"``):
the worker runs the body in a pool process (see
:mod:`asynctasq.tasks.infrastructure.process_pool_manager`). Such a task must be defined at
the top level of an importable module: pool processes import it by module name.

Source: SPEC §3.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

from asynctasq.tasks.definition import FunctionCall, Mode, TaskDefinition
from asynctasq.tasks.naming import task_name
from asynctasq.tasks.options import build_options
from asynctasq.tasks.pending import PendingDispatch

P = ParamSpec("P")
R = TypeVar("R")


class Task(Generic[P, R]):
    """A function made a task; calling it returns a :class:`PendingDispatch`.

    Attributes:
        function: the decorated function.
        definition: its name, mode and options (what a worker's registry holds).
        name: the task name, ``module:qualname`` unless given.
    """

    def __init__(self, function: Callable[P, R], definition: TaskDefinition) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.definition = definition
        self._signature = inspect.signature(function)

    @property
    def name(self) -> str:
        """The task name."""
        return self.definition.name

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> PendingDispatch:
        """Bind arguments for a later ``dispatch()``.

        Raises:
            TypeError: the arguments do not fit the function's signature.
        """
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.definition.name!r}: {exc}") from None
        return PendingDispatch(self.definition, args, kwargs)

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function inline, bypassing the queue (a coroutine for ``async def``)."""
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.definition.name} mode={self.definition.mode}>"


def _mode_of(function: Callable[..., Any], process: bool) -> Mode:
    if inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
        raise TypeError(f"@task cannot wrap a generator function ({function.__qualname__})")
    if inspect.iscoroutinefunction(function):
        return "async_process" if process else "async"
    return "sync_process" if process else "sync"


def _make(function: Callable[P, R], name: str | None, process: bool, **options: Any) -> Task[P, R]:
    if isinstance(function, type) or not callable(function):
        raise TypeError(
            f"@task decorates functions; got {function!r} (subclass AsyncTask or SyncTask for "
            "class tasks)"
        )
    named, import_error = task_name(function.__module__, function.__qualname__)
    module = "" if import_error else named.partition(":")[0]
    if name is not None:
        named, import_error = name, ""
    given = {key: value for key, value in options.items() if value is not None}
    definition = TaskDefinition(
        name=named,
        mode=_mode_of(function, process),
        options=build_options(given, f"@task(...) on {named!r}"),
        invoke=functools.partial(_invoke, function),
        import_error=import_error,
        module=module,
        qualname=function.__qualname__,
    )
    return Task(function, definition)


def _invoke(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> FunctionCall:
    return FunctionCall(function, args, kwargs)


@overload
def task(function: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    queue: str | None = None,
    max_attempts: int | None = None,
    retry_strategy: str | None = None,
    retry_delay: float | None = None,
    timeout: float | None = None,
    visibility_timeout: float | None = None,
    driver: str | None = None,
    process: bool = False,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str | None = None,
    max_attempts: int | None = None,
    retry_strategy: str | None = None,
    retry_delay: float | None = None,
    timeout: float | None = None,
    visibility_timeout: float | None = None,
    driver: str | None = None,
    process: bool = False,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a task, bare (``@task``) or with settings (``@task(...)``).

    Args:
        function: the function, when used bare.
        name: task name instead of ``module:qualname`` (the worker's registry must hold it).
        queue: queue name (default ``task_defaults.queue``).
        max_attempts: executions allowed, the first included (default ``task_defaults``).
        retry_strategy: ``"fixed"`` or ``"exponential"`` (default ``task_defaults``).
        retry_delay: base retry delay in seconds (default ``task_defaults``).
        timeout: per-execution limit in seconds (default none).
        visibility_timeout: lease length in seconds, at least 1 (default 3600).
        driver: driver name to route this task to (default the handle's driver).
        process: run in the process pool (modes ``async_process``/``sync_process``).

    Returns:
        The :class:`Task`, or a decorator producing it.

    Raises:
        ConfigError: a setting is out of range (naming it and the task).
        TypeError: the decorated object is not a plain function.
    """
    options: dict[str, Any] = {
        "queue": queue,
        "max_attempts": max_attempts,
        "retry_strategy": retry_strategy,
        "retry_delay": retry_delay,
        "timeout": timeout,
        "visibility_timeout": visibility_timeout,
        "driver": driver,
    }
    if function is not None:
        return _make(function, name, process, **options)

    def decorate(inner: Callable[P, R]) -> Task[P, R]:
        return _make(inner, name, process, **options)

    return decorate
