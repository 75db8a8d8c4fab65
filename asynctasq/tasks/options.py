"""Per-task settings: the partial ``TaskOptions`` and the complete ``TaskSettings``.

A task's settings come from three places, highest priority first (SPEC §3):

1. the chained calls on a pending dispatch (``.on_queue("q").max_attempts(5)``),
2. the ``@task(...)`` arguments or a task class's ``config``,
3. ``task_defaults`` of the current handle's configuration, read at dispatch time.

``TaskOptions`` holds what one level sets (``None`` = not set there); :func:`settle_options`
folds the levels into one :class:`TaskSettings` with no gaps.

Source: seed "Task Defaults Configuration" (``timeout``, ``visibility_timeout``,
``correlation_id`` and ``driver`` are per-task only; visibility timeout default 3600 s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from asynctasq.config.records import MAX_DELAY_SECONDS, RETRY_STRATEGIES, TaskDefaultsConfig
from asynctasq.errors import ConfigError

DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 3600.0
"""Lease length when nothing sets one. Source: seed "Visibility Timeout Warning"."""

MIN_VISIBILITY_TIMEOUT_SECONDS = 1.0
"""The shortest lease a task may ask for (``visibility_timeout``), seconds.

Leases are renewed every third of their length, one broker round trip each, and a lease
lapses after a pause in renewal longer than itself: under a second, a slow broker reply or
a garbage-collection pause hands a running task to a second worker, and SQS cannot hold
less than a second at all. docs/tasks.md says "leases under a second are not supported";
this makes it so, where the value is set (decorator, class ``config``, chained call).
"""

OPTION_NAMES = (
    "queue",
    "max_attempts",
    "retry_strategy",
    "retry_delay",
    "timeout",
    "visibility_timeout",
    "driver",
    "correlation_id",
)
"""The keys a decorator, a class ``config`` (``TaskConfig``) or a chained call may set."""


@attrs.frozen
class TaskOptions:
    """Settings one level sets; ``None`` means "not set here, ask the level below".

    Attributes:
        queue: queue name.
        max_attempts: executions allowed, the first included (>= 1).
        retry_strategy: ``"fixed"`` or ``"exponential"``.
        retry_delay: base delay before a retry, seconds (0 to ``MAX_DELAY_SECONDS``).
        timeout: longest one execution may run, seconds (> 0); ``None`` = no limit.
        visibility_timeout: lease length while a worker holds the task, seconds
            (``MIN_VISIBILITY_TIMEOUT_SECONDS`` to ``MAX_DELAY_SECONDS``).
        driver: the driver name to route this task to (``None`` = the handle's driver).
        correlation_id: tracing id carried in the message.
    """

    queue: str | None = None
    max_attempts: int | None = None
    retry_strategy: str | None = None
    retry_delay: float | None = None
    timeout: float | None = None
    visibility_timeout: float | None = None
    driver: str | None = None
    correlation_id: str | None = None

    def over(self, lower: TaskOptions) -> TaskOptions:
        """Return these options with every unset key taken from ``lower``."""
        if self is NO_OPTIONS:
            return lower
        return TaskOptions(
            **{
                name: mine if (mine := getattr(self, name)) is not None else getattr(lower, name)
                for name in OPTION_NAMES
            }
        )


NO_OPTIONS = TaskOptions()
"""The empty options (shared: records are immutable); a pending dispatch starts with it."""


@attrs.frozen
class TaskSettings:
    """The complete settings one dispatch uses (no gaps).

    Attributes:
        queue: queue name.
        max_attempts: executions allowed, the first included.
        retry_strategy: ``"fixed"`` or ``"exponential"``.
        retry_delay_seconds: base retry delay, seconds.
        timeout_seconds: per-execution limit in seconds, or ``None``.
        visibility_timeout_seconds: lease length, seconds.
        driver: driver name, or ``None`` for the handle's own.
        correlation_id: tracing id, or ``None``.
    """

    queue: str
    max_attempts: int
    retry_strategy: str
    retry_delay_seconds: float
    timeout_seconds: float | None
    visibility_timeout_seconds: float
    driver: str | None
    correlation_id: str | None


def settle_options(options: TaskOptions, defaults: TaskDefaultsConfig) -> TaskSettings:
    """Fill the gaps in ``options`` (already merged chained > task) from ``task_defaults``.

    Args:
        options: the merged chained and task-level options.
        defaults: the current configuration's ``task_defaults`` group.

    Returns:
        The complete settings.
    """
    return TaskSettings(
        queue=options.queue if options.queue is not None else defaults.queue,
        max_attempts=(
            options.max_attempts if options.max_attempts is not None else defaults.max_attempts
        ),
        retry_strategy=(
            options.retry_strategy
            if options.retry_strategy is not None
            else defaults.retry_strategy
        ),
        retry_delay_seconds=float(
            options.retry_delay if options.retry_delay is not None else defaults.retry_delay
        ),
        timeout_seconds=None if options.timeout is None else float(options.timeout),
        visibility_timeout_seconds=float(
            options.visibility_timeout
            if options.visibility_timeout is not None
            else DEFAULT_VISIBILITY_TIMEOUT_SECONDS
        ),
        driver=options.driver,
        correlation_id=options.correlation_id,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _delay(value: Any) -> bool:
    return _number(value) and 0 <= value <= MAX_DELAY_SECONDS


def _lease(value: Any) -> bool:
    return _delay(value) and value >= MIN_VISIBILITY_TIMEOUT_SECONDS


_UP_TO = f"{MAX_DELAY_SECONDS} (365 days)"


_RULES: Final[Mapping[str, tuple[Any, str]]] = MappingProxyType(
    {
        "queue": (lambda v: isinstance(v, str) and v.strip() != "", "must be a non-empty string"),
        "max_attempts": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
            "must be an integer of at least 1",
        ),
        "retry_strategy": (lambda v: v in RETRY_STRATEGIES, f"must be one of {RETRY_STRATEGIES}"),
        "retry_delay": (_delay, f"must be a number of seconds from 0 to {_UP_TO}"),
        "delay": (_delay, f"must be a number of seconds from 0 to {_UP_TO}"),
        "timeout": (lambda v: _number(v) and v > 0, "must be a number of seconds > 0"),
        "visibility_timeout": (
            _lease,
            f"must be a number of seconds from {MIN_VISIBILITY_TIMEOUT_SECONDS:g} to {_UP_TO} "
            "(leases under a second are not supported)",
        ),
        "driver": (lambda v: isinstance(v, str) and v != "", "must be a driver name"),
        "correlation_id": (lambda v: isinstance(v, str), "must be a string"),
    }
)


def check_option(name: str, value: Any, where: str) -> None:
    """Raise ``ConfigError`` unless ``value`` is acceptable for option ``name``.

    Args:
        name: an option name from :data:`OPTION_NAMES`, or ``"delay"`` (``.delay()``).
        value: the value given (``None`` is always accepted: "not set").
        where: who set it, for the message, e.g. ``"@task(...) on 'mod:fn'"``.

    Raises:
        ConfigError: naming the option, the value, ``where`` and the rule.
    """
    if value is None:
        return
    check, rule = _RULES[name]
    if not check(value):
        raise ConfigError(f"{name}={value!r} in {where}: {rule}")


def build_options(values: dict[str, Any], where: str) -> TaskOptions:
    """Validate ``values`` (option name -> value) and return them as ``TaskOptions``.

    Raises:
        ConfigError: an unknown key (naming the known ones) or a bad value.
    """
    unknown = sorted(set(values) - set(OPTION_NAMES))
    if unknown:
        raise ConfigError(
            f"unknown task option(s) {', '.join(map(repr, unknown))} in {where}; "
            f"known options: {', '.join(OPTION_NAMES)}"
        )
    for name, value in values.items():
        check_option(name, value, where)
    return TaskOptions(**values)
