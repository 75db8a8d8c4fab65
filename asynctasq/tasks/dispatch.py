"""Dispatch: turn pending dispatches into messages and enqueue them through the handle.

``dispatch(pending)`` makes one broker call; ``dispatch_many(pendings)`` makes one
``enqueue_many`` call per driver involved (normally exactly one), so a batch costs one
round trip (issue 3, item 9).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from asynctasq.config.records import Config
from asynctasq.drivers.protocol import Driver, Outgoing
from asynctasq.errors import ConfigError, MessageTooLargeError, SerializationError
from asynctasq.events.lifecycle import task_event
from asynctasq.events.records import EventType
from asynctasq.handle import current_handle
from asynctasq.message import TaskMessage, encode
from asynctasq.orm import to_references
from asynctasq.tasks.options import settle_options

if TYPE_CHECKING:
    from asynctasq.tasks.pending import PendingDispatch

logger = logging.getLogger("asynctasq.dispatch")


def build_message(pending: PendingDispatch, config: Config) -> TaskMessage:
    """Return the first-attempt message for ``pending`` under ``config``'s task defaults.

    Raises:
        ConfigError: the task is defined in a ``__main__`` that a worker cannot import.
        SerializationError: an ORM model argument is unsaved or sent to a process-pool task.
    """
    definition = pending.task
    if definition.import_error:
        raise ConfigError(definition.import_error)
    settings = settle_options(pending.overrides.over(definition.options), config.task_defaults)
    args, kwargs = to_references(  # ORM models travel as references (asynctasq.orm)
        pending.args,
        pending.kwargs,
        task=definition.name,
        process=definition.mode.endswith("_process"),
    )
    return TaskMessage(
        task_id=uuid.uuid4().hex,
        task_name=definition.name,
        args=tuple(args),
        kwargs=dict(kwargs),
        queue=settings.queue,
        attempt=1,
        max_attempts=settings.max_attempts,
        retry_strategy=settings.retry_strategy,
        retry_delay_seconds=settings.retry_delay_seconds,
        timeout_seconds=settings.timeout_seconds,
        visibility_timeout_seconds=settings.visibility_timeout_seconds,
        correlation_id=settings.correlation_id,
        dispatched_at=time.time(),
        mode=definition.mode,
    )


def outgoing(message: TaskMessage, driver: Driver, *, delay_seconds: float = 0.0) -> Outgoing:
    """Encode ``message`` for ``driver``.

    Raises:
        SerializationError: an argument cannot be encoded (the message names it).
        MessageTooLargeError: the body is larger than ``driver.max_message_bytes``.
    """
    body = encode(message)
    limit = driver.max_message_bytes
    if limit is not None and len(body) > limit:
        raise MessageTooLargeError(
            f"task {message.task_name!r} encodes to {len(body)} bytes, above the "
            f"{driver.name} driver's limit of {limit} bytes; pass a reference (an id, a URL) "
            "instead of the data itself"
        )
    return Outgoing(
        queue=message.queue,
        body=body,
        delay_seconds=delay_seconds,
        visibility_timeout_seconds=message.visibility_timeout_seconds,
        task_id=message.task_id,
    )


def enqueued(
    handle: Any,
    messages: Sequence[TaskMessage],
    delays: Sequence[float] | None = None,
    *,
    at: float | None = None,
) -> None:
    """Report messages just stored by the broker: ``task_enqueued`` events, a debug line.

    Never raises: the tasks are stored, so a failure here (an event emitter's) must not make
    the caller think the dispatch failed and dispatch again; it is logged.

    Args:
        handle: the handle they were dispatched through (its event bus gets the events).
        messages: the stored messages.
        delays: each message's dispatch delay in seconds (default none).
        at: the events' timestamp, epoch seconds: taken just before the broker call, so it
            is never later than a worker's ``task_started`` of the same task (default now).
    """
    try:
        bus = handle.event_bus()
        if bus.wants():
            now = time.time() if at is None else at
            for index, message in enumerate(messages):
                delay = delays[index] if delays is not None else 0.0
                bus.publish(task_event(EventType.TASK_ENQUEUED, message, now, delay_seconds=delay))
    except Exception:  # defensive: the bus itself never raises
        logger.warning("reporting %d enqueued task(s) failed", len(messages), exc_info=True)
    if logger.isEnabledFor(logging.DEBUG):
        for message in messages:
            logger.debug(
                "enqueued task %s %s on queue %s",
                message.task_id,
                message.task_name,
                message.queue,
            )


async def dispatch(pending: PendingDispatch) -> str:
    """Enqueue ``pending`` through the current handle and return its task id.

    Raises:
        ConfigError: no current handle ("call asynctasq.init() first"), an unimportable task,
            or a queue name the driver cannot use (its ``check_queues``).
        SerializationError: an argument cannot be encoded.
        MessageTooLargeError: the message is above the driver's limit.
        DriverError: the broker call failed.
    """
    handle = current_handle()
    message = build_message(pending, handle.config)
    driver = await handle.driver(pending.overrides.driver or pending.task.options.driver)
    item = outgoing(message, driver, delay_seconds=pending.delay_seconds)
    at = time.time()  # the event's timestamp: before the store, published after it
    await driver.enqueue(item)
    enqueued(handle, (message,), (pending.delay_seconds,), at=at)
    return message.task_id


def check_pendings(pendings: Sequence[Any]) -> None:
    """Raise ``TypeError`` naming the first item of ``pendings`` that is not a pending dispatch.

    A ``@task`` function passed uncalled and a class task's instance are named as such,
    with what to pass instead; anything else by its type and value.
    """
    from asynctasq.tasks.decorator import Task  # both import this module
    from asynctasq.tasks.pending import PendingDispatch

    for index, item in enumerate(pendings):
        if isinstance(item, PendingDispatch):
            continue
        kind = type(item).__qualname__
        if isinstance(item, Task):
            raise TypeError(
                f"dispatch_many item {index} is the task {item.name!r} itself, not a call of "
                "it: pass the call, e.g. my_task(arguments), not my_task"
            )
        if callable(getattr(item, "pending", None)):
            raise TypeError(
                f"dispatch_many item {index} is a {kind} task instance, not a pending "
                f"dispatch: pass {kind}(...).pending() (or a chained call such as .on_queue())"
            )
        raise TypeError(
            f"dispatch_many item {index} is {kind} {item!r:.80}, not a pending dispatch: "
            "pass what calling a task returns, e.g. send_email(to), or a chained call on it"
        )


def pending_list(pendings: Iterable[Any]) -> list[Any]:
    """Return ``pendings`` as a list, taking a generator or iterator once.

    Raises:
        TypeError: ``pendings`` is one pending dispatch, or not iterable (it names the type).
    """
    from asynctasq.tasks.pending import PendingDispatch  # pending imports this module

    if isinstance(pendings, PendingDispatch):
        raise TypeError(
            "dispatch_many takes an iterable of pending dispatches, not one: "
            "pass dispatch_many([pending]) or call pending.dispatch()"
        )
    try:
        return list(pendings)
    except TypeError:
        raise TypeError(
            f"dispatch_many takes an iterable of pending dispatches, not "
            f"{type(pendings).__qualname__} {pendings!r:.80}"
        ) from None


async def dispatch_many(pendings: Iterable[PendingDispatch]) -> list[str]:
    """Enqueue every pending dispatch in one ``enqueue_many`` call per driver.

    Every message is built and encoded before anything is sent, so a bad argument in
    any of them sends none; the error names the item, e.g. ``dispatch_many item 1
    (app.tasks:send): cannot serialize args[0] ...`` (items counted from 0).

    Args:
        pendings: pending dispatches, of any tasks and queues: a list, tuple, or any
            iterable (a generator is taken once, before anything is sent).

    Returns:
        The task ids, in the order of ``pendings``.

    Raises:
        TypeError: ``pendings`` is not an iterable of pending dispatches, or an item is
            not one (naming its index and type; nothing is sent).
        The errors of :func:`dispatch`.
    """
    pendings = pending_list(pendings)
    check_pendings(pendings)
    handle = current_handle()
    messages: list[TaskMessage] = []
    batches: dict[str | None, list[Outgoing]] = {}
    drivers: dict[str | None, Driver] = {}
    for index, pending in enumerate(pendings):
        name = pending.overrides.driver or pending.task.options.driver
        if name not in drivers:
            drivers[name] = await handle.driver(name)
        try:
            message = build_message(pending, handle.config)
            item = outgoing(message, drivers[name], delay_seconds=pending.delay_seconds)
        except SerializationError as exc:  # say which item of the batch
            raise type(exc)(f"dispatch_many item {index} ({pending.task.name}): {exc}") from exc
        messages.append(message)
        batches.setdefault(name, []).append(item)
    at = time.time()  # the events' timestamp: before the store, published after it
    for name, batch in batches.items():
        await drivers[name].enqueue_many(batch)
    enqueued(handle, messages, [pending.delay_seconds for pending in pendings], at=at)
    return [message.task_id for message in messages]
