"""``PendingDispatch``: a task call not yet sent, refined by chaining.

Calling a task returns one; every chained call returns a *new* value and leaves the old
one untouched, so a pending dispatch can be kept, shared and dispatched more than once::

    base = send_email("a@example.com")
    urgent = base.on_queue("urgent").max_attempts(5)
    task_id = await urgent.delay(10).dispatch()

Chained settings beat the decorator's or class's ``config``, which beat ``task_defaults``
(SPEC §3). Each method validates its value at once and raises ``ConfigError`` (also a
``ValueError``) naming the method and the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from asynctasq.tasks.definition import TaskDefinition
from asynctasq.tasks.dispatch import dispatch
from asynctasq.tasks.options import NO_OPTIONS, TaskOptions, check_option


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class PendingDispatch:
    """A task with its arguments and per-call settings, ready to :meth:`dispatch`.

    Attributes:
        task: the task's definition.
        args: positional arguments for the task.
        kwargs: keyword arguments for the task (read-only).
        overrides: the chained settings (``None`` fields are not set).
        delay_seconds: do not run before ``now + delay_seconds``.
    """

    task: TaskDefinition
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    overrides: TaskOptions = NO_OPTIONS
    delay_seconds: float = 0.0

    def _with(self, method: str, option: str, value: Any) -> PendingDispatch:
        check_option(option, value, f".{method}() on task {self.task.name!r}")
        return attrs.evolve(self, overrides=attrs.evolve(self.overrides, **{option: value}))

    def on_queue(self, name: str) -> PendingDispatch:
        """Return a copy sent to queue ``name``."""
        return self._with("on_queue", "queue", name)

    def delay(self, seconds: float) -> PendingDispatch:
        """Return a copy that is not run before ``seconds`` from dispatch.

        Raises:
            ConfigError: ``seconds`` is not a number from 0 to ``MAX_DELAY_SECONDS``
                (365 days).
        """
        check_option("delay", seconds, f".delay() on task {self.task.name!r}")
        return attrs.evolve(self, delay_seconds=float(seconds))

    def retry_after(self, seconds: float) -> PendingDispatch:
        """Return a copy whose retries wait ``seconds`` (0 to 365 days; the exponential base)."""
        return self._with("retry_after", "retry_delay", seconds)

    def max_attempts(self, attempts: int) -> PendingDispatch:
        """Return a copy allowed ``attempts`` executions in total (>= 1)."""
        return self._with("max_attempts", "max_attempts", attempts)

    def retry_strategy(self, strategy: str) -> PendingDispatch:
        """Return a copy retried with ``"fixed"`` or ``"exponential"`` delays."""
        return self._with("retry_strategy", "retry_strategy", strategy)

    def timeout(self, seconds: float) -> PendingDispatch:
        """Return a copy whose executions fail with ``TaskTimeoutError`` after ``seconds``."""
        return self._with("timeout", "timeout", seconds)

    def visibility_timeout(self, seconds: float) -> PendingDispatch:
        """Return a copy leased ``seconds`` (1 s to 365 days) per delivery, renewed as it runs."""
        return self._with("visibility_timeout", "visibility_timeout", seconds)

    def correlation_id(self, correlation_id: str) -> PendingDispatch:
        """Return a copy carrying ``correlation_id`` for tracing."""
        return self._with("correlation_id", "correlation_id", correlation_id)

    def on_driver(self, name: str) -> PendingDispatch:
        """Return a copy sent through the driver ``name`` instead of the handle's default."""
        return self._with("on_driver", "driver", name)

    async def dispatch(self) -> str:
        """Encode and enqueue through the current handle; return the task id.

        Raises:
            ConfigError: no current handle (call ``asynctasq.init()`` first), or the task
                is defined in a ``__main__`` a worker cannot import.
            SerializationError: an argument cannot be encoded (the message names it).
            MessageTooLargeError: the message exceeds the driver's size limit.
            DriverError: the broker refused or could not be reached.
        """
        return await dispatch(self)
