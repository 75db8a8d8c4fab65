"""Class tasks: subclass a base, set ``config``, implement ``execute()``.

::

    class SendEmail(AsyncTask):
        config: TaskConfig = {"queue": "emails", "max_attempts": 5}

        def __init__(self, to: str, subject: str) -> None:
            super().__init__(to=to, subject=subject)   # stored, and set as attributes

        async def execute(self) -> None:
            await smtp.send(self.to, self.subject)

        async def failed(self, exc: BaseException) -> None:   # once, after the last attempt
            await alert(f"mail to {self.to} failed: {exc}")

        def should_retry(self, exc: BaseException) -> bool:   # can only reduce attempts
            return not isinstance(exc, PermissionError)

    task_id = await SendEmail(to="a@example.com", subject="hi").delay(30).dispatch()

Defining the class gives it a :class:`~asynctasq.tasks.definition.TaskDefinition`
(``SendEmail.definition``) named ``module:qualname``; ``class X(AsyncTask, name="custom")``
picks another name, and ``abstract=True`` gives none, for your own intermediate bases.
Nothing is registered anywhere: a worker runs the class when it is given the class or its
module (``run_worker(handle, tasks=[myapp.tasks])``, ``asynctasq worker --import
myapp.tasks``). The worker rebuilds the instance with ``cls(**arguments)`` from the keyword
arguments given to ``BaseTask.__init__``, then calls ``execute()``.

Source: SPEC §3; seed "Task Defaults Configuration" (per-task ``TaskConfig`` keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypedDict

from asynctasq.tasks.definition import Invocation, Mode, TaskDefinition
from asynctasq.tasks.naming import task_name
from asynctasq.tasks.options import build_options
from asynctasq.tasks.pending import PendingDispatch


class TaskConfig(TypedDict, total=False):
    """Per-task settings of a task class (every key optional).

    Keys: ``queue`` (str), ``max_attempts`` (int >= 1, executions including the first),
    ``retry_strategy`` ("fixed" | "exponential"), ``retry_delay`` (seconds >= 0),
    ``timeout`` (seconds > 0), ``visibility_timeout`` (seconds >= 1, default 3600),
    ``driver`` (driver name), ``correlation_id`` (str).
    """

    queue: str
    max_attempts: int
    retry_strategy: str
    retry_delay: float
    timeout: float
    visibility_timeout: float
    driver: str
    correlation_id: str


class BaseTask:
    """What the four task bases share: arguments, dispatch and chaining, hooks.

    Attributes:
        config: the class's settings (chained calls override them; they override
            ``task_defaults``). Not a ``ClassVar``, so that subclasses can write
            ``config: TaskConfig = {...}`` as SPEC §3 shows and type checkers accept it.
        definition: the class's name, mode and options, set when a concrete class is
            defined (an abstract class has none of its own).
    """

    config: TaskConfig = {}  # noqa: RUF012 -- subclasses write `config: TaskConfig = {...}`
    mode: ClassVar[Mode] = "async"
    definition: ClassVar[TaskDefinition]

    def __init_subclass__(
        cls, *, name: str | None = None, abstract: bool = False, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        named, import_error = task_name(cls.__module__, cls.__qualname__)
        module = "" if import_error else named.partition(":")[0]
        if name is not None:
            named, import_error = name, ""
        cls.definition = TaskDefinition(
            name=named,
            mode=cls.mode,
            options=build_options(dict(cls.config), f"config of task class {named!r}"),
            invoke=cls._invoke,
            import_error=import_error,
            module=module,
            qualname=cls.__qualname__,
        )

    @classmethod
    def _invoke(cls, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Invocation:
        instance: Invocation = cls(*args, **kwargs)  # type: ignore[assignment]  # a concrete subclass
        return instance

    def __init__(self, **arguments: Any) -> None:
        """Store the task's arguments; each also becomes an attribute (``self.to``).

        Raises:
            TypeError: an argument's name is one of the base class's own members.
        """
        clash = sorted(key for key in arguments if key in _RESERVED)
        if clash:
            raise TypeError(
                f"{type(self).__qualname__}: argument name(s) {clash} are reserved by the "
                "task base class; rename them"
            )
        self._task_arguments = dict(arguments)
        for key, value in arguments.items():
            setattr(self, key, value)

    def pending(self) -> PendingDispatch:
        """Return this call as a :class:`PendingDispatch` (the start of a chain).

        Raises:
            TypeError: the class is abstract, or its ``__init__`` skipped ``super().__init__``.
        """
        definition = vars(type(self)).get("definition")  # not one inherited by an abstract class
        if definition is None:
            raise TypeError(f"{type(self).__qualname__} is abstract; dispatch a subclass")
        arguments = getattr(self, "_task_arguments", None)
        if arguments is None:
            raise TypeError(
                f"{type(self).__qualname__}.__init__ must call super().__init__(**arguments) "
                "so the worker can rebuild the task"
            )
        return PendingDispatch(definition, (), arguments)

    async def dispatch(self) -> str:
        """Enqueue through the current handle; return the task id (see ``PendingDispatch``)."""
        return await self.pending().dispatch()

    def on_queue(self, name: str) -> PendingDispatch:
        """Return the call sent to queue ``name``."""
        return self.pending().on_queue(name)

    def delay(self, seconds: float) -> PendingDispatch:
        """Return the call, not run before ``seconds`` from dispatch."""
        return self.pending().delay(seconds)

    def retry_after(self, seconds: float) -> PendingDispatch:
        """Return the call with retries ``seconds`` apart (the exponential base)."""
        return self.pending().retry_after(seconds)

    def max_attempts(self, attempts: int) -> PendingDispatch:
        """Return the call allowed ``attempts`` executions in total."""
        return self.pending().max_attempts(attempts)

    def timeout(self, seconds: float) -> PendingDispatch:
        """Return the call with a per-execution limit of ``seconds``."""
        return self.pending().timeout(seconds)

    def visibility_timeout(self, seconds: float) -> PendingDispatch:
        """Return the call leased for ``seconds`` per delivery."""
        return self.pending().visibility_timeout(seconds)

    def correlation_id(self, correlation_id: str) -> PendingDispatch:
        """Return the call carrying ``correlation_id``."""
        return self.pending().correlation_id(correlation_id)

    def should_retry(self, exc: BaseException) -> bool:
        """Return False to stop retrying after ``exc``; attempts never exceed the maximum."""
        return True


class AsyncTask(BaseTask, abstract=True):
    """A task whose ``async def execute()`` runs on the worker's event loop."""

    mode: ClassVar[Mode] = "async"

    async def execute(self) -> Any:
        """The task body. Override it."""
        raise NotImplementedError(f"{type(self).__qualname__}.execute() is not implemented")

    async def failed(self, exc: BaseException) -> None:
        """Called once after the last attempt failed with ``exc``; errors here are logged."""


class SyncTask(BaseTask, abstract=True):
    """A task whose ``def execute()`` runs in a worker thread (the loop stays free)."""

    mode: ClassVar[Mode] = "sync"

    def execute(self) -> Any:
        """The task body. Override it."""
        raise NotImplementedError(f"{type(self).__qualname__}.execute() is not implemented")

    def failed(self, exc: BaseException) -> None:
        """Called once (in a thread) after the last attempt failed with ``exc``."""


class AsyncProcessTask(AsyncTask, abstract=True):
    """An async task whose ``async def execute()`` runs in a pool process (``async_process``).

    For CPU-bound work that also awaits: the body runs on an event loop in a pool process,
    so the worker's own loop stays free. With a :class:`ProcessPoolManager` initialised
    (``await manager.initialize()``) each pool process keeps one warm loop for all its
    tasks; otherwise a loop is made per task and a warning is logged once per process.
    The instance is rebuilt in the pool process from its arguments; ``failed()`` and
    ``should_retry()`` run in the worker process. Define the class at the top level of an
    importable module.

    Source: seed "Warm Event Loops for AsyncProcessTask"; SPEC §3, §8.
    """

    mode: ClassVar[Mode] = "async_process"


class SyncProcessTask(SyncTask, abstract=True):
    """A sync task whose ``def execute()`` runs in a pool process (mode ``sync_process``).

    For CPU-bound work: it runs outside the worker process, so it neither holds the GIL
    of the worker nor blocks its loop, and a timeout stops it (its process is killed).
    Arguments, the result and exceptions cross the process boundary by pickle. ``failed()``
    and ``should_retry()`` run in the worker process. Define the class at the top level of
    an importable module.

    Source: seed "Process Pool Configuration"; SPEC §3, §8.
    """

    mode: ClassVar[Mode] = "sync_process"


_RESERVED = frozenset(
    name for base in (AsyncTask, SyncTask) for name in dir(base) if not name.startswith("__")
) | {"definition", "config", "mode"}
