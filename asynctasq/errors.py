"""Every error asynctasq raises on purpose.

The tree::

    AsyncTasQError
     ├── ConfigError          (also a ValueError) a setting is missing, malformed or out of range
     ├── TaskNotFoundError    a message names a task this process has not registered
     ├── SerializationError   a task argument cannot be encoded, or a payload cannot be decoded
     ├── MessageTooLargeError (also a SerializationError) an encoded message exceeds the limit
     ├── DriverError          a broker call failed; raised ``from`` the client's own exception
     ├── TaskTimeoutError     a task ran past its ``timeout``
     ├── TaskCancelledError   a running task was cancelled because its worker stopped
     ├── WorkerLostError      a task's last attempt ended with its worker (lease expired)
     ├── ProcessPoolUnavailableError  a process-pool task reached a worker without a pool
     │    └── PoolProcessRefusedError  a pool process was asked to start a worker or a pool
     ├── PoolProcessDiedError a pool process died while running a task (crash, signal, OOM)
     └── ModelNotFoundError   a model passed to a task no longer exists when the worker loads it

    UserWarning
     └── UnknownSettingWarning  an ``ASYNCTASQ_*`` variable names no setting, or a ``.env``
                                line is not ``KEY=value`` (it is ignored)

Each class's docstring is its default message. The CLI turns ``ConfigError`` into exit
code 2 and the others into exit code 1, with one line and no traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class AsyncTasQError(Exception):
    """An asynctasq error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__class__.__doc__ or "").strip())


@attrs.frozen
class ConfigProblem:
    """One bad setting: where it is, what it was, where it came from and the rule it broke.

    Attributes:
        path: dotted key path, e.g. ``"redis.db"``.
        value: the offending value as text, secrets already masked (``None`` when missing).
        source: where the value came from: ``"code"``,
            ``"environment variable ASYNCTASQ_REDIS_DB"``, ``".env line 3"``,
            ``"default"`` or ``"flag --redis-db"``.
        rule: the rule it broke, in words ("must be between 0 and 15").
    """

    path: str
    value: str | None
    source: str
    rule: str

    def render(self) -> str:
        """Return the problem as one line: ``path = value (from source): rule``."""
        shown = "<missing>" if self.value is None else repr(self.value)
        return f"{self.path} = {shown} (from {self.source}): {self.rule}"


class ConfigError(AsyncTasQError, ValueError):
    """The configuration is invalid."""

    def __init__(self, problems: Sequence[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            self.problems: tuple[ConfigProblem, ...] = ()
            super().__init__(problems)
            return
        self.problems = tuple(problems)
        count = len(self.problems)
        head = f"invalid asynctasq configuration ({count} problem{'s' if count != 1 else ''}):"
        body = "\n".join(f"  - {p.render()}" for p in self.problems)
        super().__init__(f"{head}\n{body}")


class TaskNotFoundError(AsyncTasQError):
    """The message names a task that is not registered in this worker process."""


class SerializationError(AsyncTasQError):
    """A value cannot be encoded into, or decoded from, a task message."""


class MessageTooLargeError(SerializationError):
    """The encoded task message is larger than the broker accepts."""


class DriverError(AsyncTasQError):
    """A broker operation failed.

    Args:
        broker: the driver name, e.g. ``"redis"``.
        operation: what was attempted, e.g. ``"enqueue"``.
        detail: the client's message with any password already removed.
    """

    def __init__(self, broker: str, operation: str, detail: str = "") -> None:
        self.broker = broker
        self.operation = operation
        suffix = f": {detail}" if detail else ""
        super().__init__(f"{broker} {operation} failed{suffix}")


class TaskTimeoutError(AsyncTasQError):
    """The task ran longer than its timeout."""


class TaskCancelledError(AsyncTasQError):
    """The task was cancelled at shutdown: its worker stopped before it finished."""


class WorkerLostError(AsyncTasQError):
    """The task's attempts were used up by executions whose worker died (lease expired)."""


class ProcessPoolUnavailableError(AsyncTasQError):
    """Process-pool tasks (process=True, AsyncProcessTask, SyncProcessTask) cannot run here."""


class PoolProcessRefusedError(ProcessPoolUnavailableError):
    """A pool process was asked to start a worker or pool processes (an unguarded script).

    Whoever sees it cannot fix it by trying again: the task modules must be changed
    (:mod:`asynctasq.tasks.infrastructure.guard` explains the case).
    """


class PoolProcessDiedError(AsyncTasQError):
    """The pool process running the task died before it returned (crash, signal, out of memory)."""


class ModelNotFoundError(AsyncTasQError):
    """A model instance passed to the task no longer exists (its row was deleted)."""


class UnknownSettingWarning(UserWarning):
    """An ``ASYNCTASQ_*`` variable names no setting, or a ``.env`` line is not ``KEY=value``.

    The variable or line is ignored; the warning names it and where it was.
    """
