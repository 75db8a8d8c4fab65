"""The task message: what dispatch puts on a broker and a worker takes off it.

A :class:`TaskMessage` is encoded as one compact msgpack array, its first item the format
version::

    [1, task_id, task_name, args, kwargs, queue, attempt, max_attempts, retry_strategy,
     retry_delay_seconds, timeout_seconds, visibility_timeout_seconds, correlation_id,
     dispatched_at, mode]

Arguments go through :mod:`asynctasq.codec`, so they come back with their types intact
(tuples stay tuples, aware datetimes keep their zone, ...). A reader refuses any other
version with a clear error, so a change of layout is detected rather than misread: a new
layout takes the next version number and the decoder keeps reading the old one.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Final

import attrs

from asynctasq import codec
from asynctasq.codec import wire
from asynctasq.config.records import RETRY_STRATEGIES
from asynctasq.errors import SerializationError

FORMAT_VERSION: Final = 1
MODES: Final = ("async", "sync", "async_process", "sync_process")


@attrs.frozen
class TaskMessage:
    """One dispatched task, as it travels.

    Attributes:
        task_id: unique id of the task (the same for every attempt).
        task_name: the registered task name, ``module:qualname`` by default.
        args: positional arguments (any type :mod:`asynctasq.codec` supports).
        kwargs: keyword arguments, keyed by parameter name.
        queue: the queue name.
        attempt: 1-based number of the execution this message starts.
        max_attempts: executions allowed in total, the first included (>= 1).
        retry_strategy: ``"fixed"`` or ``"exponential"`` (see :mod:`asynctasq.retry`).
        retry_delay_seconds: the base delay before a retry, seconds (>= 0).
        timeout_seconds: the limit on one execution, seconds; ``None`` for none.
        visibility_timeout_seconds: how long a delivery stays invisible to other workers
            without a lease extension, seconds.
        correlation_id: the caller's id tying related tasks together, or ``None``.
        dispatched_at: when the task was first dispatched, epoch seconds (UTC).
        mode: ``"async"``, ``"sync"``, ``"async_process"`` or ``"sync_process"``.
    """

    task_id: str
    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str
    attempt: int
    max_attempts: int
    retry_strategy: str
    retry_delay_seconds: float
    timeout_seconds: float | None
    visibility_timeout_seconds: float
    correlation_id: str | None
    dispatched_at: float
    mode: str = "async"


def encode(message: TaskMessage) -> bytes:
    """Return ``message`` as msgpack bytes (format version :data:`FORMAT_VERSION`).

    Raises:
        SerializationError: an argument cannot travel; the message names it, e.g.
            ``cannot serialize args[1] (a _thread.lock): ...`` or
            ``cannot serialize kwargs['when']['x'] (a function): ...``; or a field of the
            message itself is invalid (e.g. ``attempt`` below 1), named the same way.
    """
    fields = [
        FORMAT_VERSION,
        message.task_id,
        message.task_name,
        codec.lower_items(message.args, "args"),
        codec.lower(message.kwargs, "kwargs"),
        message.queue,
        message.attempt,
        message.max_attempts,
        message.retry_strategy,
        message.retry_delay_seconds,
        message.timeout_seconds,
        message.visibility_timeout_seconds,
        message.correlation_id,
        message.dispatched_at,
        message.mode,
    ]
    _check(fields, "cannot serialize")
    return codec.pack(fields)


def decode(body: bytes | bytearray | memoryview) -> TaskMessage:
    """Return the message encoded in ``body``.

    Raises:
        SerializationError: ``body`` is not a task message (not msgpack, truncated, not an
            array), has another format version, has a field of the wrong type or value, or
            holds an argument this process cannot rebuild (e.g. an Enum whose module the
            worker has not imported). The message says which.
    """
    fields = codec.unpack(body)
    if type(fields) is not list or not fields:
        raise SerializationError(
            f"cannot decode: not an asynctasq task message (a msgpack {type(fields).__name__})"
        )
    version = fields[0]
    if type(version) is not int or version != FORMAT_VERSION:
        raise SerializationError(
            f"cannot decode: task message format version {version!r} is not supported"
            f" (this asynctasq reads version {FORMAT_VERSION})"
        )
    _check(fields, "cannot decode")
    timeout = fields[10]
    return TaskMessage(
        fields[1],
        fields[2],
        tuple(fields[3]),
        fields[4],
        fields[5],
        fields[6],
        fields[7],
        fields[8],
        float(fields[9]),
        None if timeout is None else float(timeout),
        float(fields[11]),
        fields[12],
        float(fields[13]),
        fields[14],
    )


def with_attempt(body: bytes | bytearray | memoryview, attempt: int) -> bytes:
    """Return ``body`` with its ``attempt`` field set to ``attempt``, the rest unchanged.

    The arguments are not rebuilt (extension values are copied as they are), so this works
    in a process that could not decode them, e.g. ``asynctasq dlq requeue``.

    Raises:
        SerializationError: ``body`` is not a task message of this format version, or
            ``attempt`` is below 1.
    """
    try:
        fields = wire.unpack(body, wire.ExtType)
    except Exception as exc:
        raise SerializationError(f"cannot decode: {type(exc).__name__}: {exc}") from exc
    if type(fields) is not list or not fields or fields[0] != FORMAT_VERSION:
        raise SerializationError("cannot decode: not an asynctasq task message of this version")
    if len(fields) != len(_LAYOUT) or type(fields[6]) is not int:
        raise SerializationError(f"cannot decode: task message has {len(fields)} fields")
    if attempt < 1:
        raise SerializationError(f"cannot encode: attempt = {attempt!r} is below 1")
    fields[6] = attempt
    return wire.packb(fields)


_NUMBER = (int, float)
# Field name and the exact types allowed, in array order (bool is not an int here).
_LAYOUT: Final[tuple[tuple[str, tuple[type, ...]], ...]] = (
    ("format version", (int,)),
    ("task_id", (str,)),
    ("task_name", (str,)),
    ("args", (list,)),
    ("kwargs", (dict,)),
    ("queue", (str,)),
    ("attempt", (int,)),
    ("max_attempts", (int,)),
    ("retry_strategy", (str,)),
    ("retry_delay_seconds", _NUMBER),
    ("timeout_seconds", (type(None), *_NUMBER)),
    ("visibility_timeout_seconds", _NUMBER),
    ("correlation_id", (type(None), str)),
    ("dispatched_at", _NUMBER),
    ("mode", (str,)),
)
_STR_ONLY: Final = frozenset({str})
# Every valid tuple of field types: checking one membership is the fast path.
_SIGNATURES: Final = frozenset(itertools.product(*(types for _, types in _LAYOUT)))


def _check(fields: list[Any], verb: str) -> None:
    """Raise SerializationError naming the first field of a wrong type or value."""
    if tuple(map(type, fields)) not in _SIGNATURES:
        _explain_types(fields, verb)
    problem = _value_problem(fields)
    if problem:
        raise SerializationError(f"{verb}: task message field {problem}")


def _explain_types(fields: list[Any], verb: str) -> None:
    if len(fields) != len(_LAYOUT):
        raise SerializationError(
            f"{verb}: task message has {len(fields)} fields, expected {len(_LAYOUT)}"
        )
    for (name, types), value in zip(_LAYOUT, fields, strict=True):
        if type(value) not in types:
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in types)
            raise SerializationError(
                f"{verb}: task message field {name} = {value!r} is not {expected}"
            )


def _value_problem(fields: list[Any]) -> str | None:
    kwargs, _, attempt, max_attempts, strategy, delay, timeout, visibility = fields[4:12]
    mode = fields[14]
    if (
        attempt >= 1
        and max_attempts >= 1
        and strategy in RETRY_STRATEGIES
        and 0 <= delay < math.inf
        and (timeout is None or timeout > 0)
        and visibility > 0
        and mode in MODES
        and set(map(type, kwargs)) <= _STR_ONLY
    ):
        return None
    problems = (
        (attempt >= 1, f"attempt = {attempt!r} is below 1"),
        (max_attempts >= 1, f"max_attempts = {max_attempts!r} is below 1"),
        (
            strategy in RETRY_STRATEGIES,
            f"retry_strategy = {strategy!r} is not one of {RETRY_STRATEGIES}",
        ),
        (0 <= delay < math.inf, f"retry_delay_seconds = {delay!r} is not a finite number >= 0"),
        (timeout is None or timeout > 0, f"timeout_seconds = {timeout!r} is not None or > 0"),
        (visibility > 0, f"visibility_timeout_seconds = {visibility!r} is not > 0"),
        (mode in MODES, f"mode = {mode!r} is not one of {MODES}"),
    )
    return next((text for ok, text in problems if not ok), "kwargs has a key that is not a str")
