"""The dead-letter workflow: list, show, requeue and purge, through a handle.

::

    entries = await list_dead_letters(handle, "emails")
    moved = await requeue_dead_letters(handle, "emails", [entries[0].task_id])
    purged = await purge_dead_letters(handle, "emails")

A requeued task keeps its task id and starts again at attempt 1 (its full ``max_attempts``
budget): the message's attempt field is rewritten without rebuilding its arguments, so this
works from a process that has not imported the task's modules. An entry whose body is not a
task message (an undecodable payload) goes back unchanged and is dead-lettered again by the
worker that takes it. Each entry leaves the dead-letter store and enters the queue in one
step where the broker allows it (memory, Redis).

The driver must implement :class:`~asynctasq.drivers.protocol.DeadLetterStore`; otherwise
these raise ``ConfigError`` naming the driver.

Source: issue 6 item 4.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

from asynctasq.drivers.protocol import DeadLetterEntry, DeadLetterStore, Driver
from asynctasq.errors import ConfigError, SerializationError
from asynctasq.handle import Handle, current_handle
from asynctasq.message import TaskMessage, decode, with_attempt
from asynctasq.monitoring.names import name_list

logger = logging.getLogger("asynctasq.monitoring")

SCAN_LIMIT = 1_000_000
"""The most entries :func:`find_dead_letter` looks through."""


async def dead_letter_store(
    handle: Handle | None = None, driver: str | None = None
) -> DeadLetterStore:
    """Return the handle's opened driver as a dead-letter store.

    Raises:
        ConfigError: no current handle, a bad driver, or a driver without dead-letter
            inspection.
        DriverError: the broker cannot be reached.

    """
    opened: Driver = await (handle or current_handle()).driver(driver)
    if not isinstance(opened, DeadLetterStore):
        raise ConfigError(
            f"the {opened.name} driver cannot list, requeue or purge dead letters "
            "(it does not implement DeadLetterStore)"
        )
    return opened


async def list_dead_letters(
    handle: Handle | None, queue: str, *, limit: int = 100, driver: str | None = None
) -> list[DeadLetterEntry]:
    """Return up to ``limit`` dead letters of ``queue``, oldest first.

    Raises:
        ConfigError: see :func:`dead_letter_store`.
        DriverError: the broker call failed.

    """
    store = await dead_letter_store(handle, driver)
    return await store.dead_letters(queue, limit=limit)


async def find_dead_letter(
    handle: Handle | None, queue: str, task_id: str, *, driver: str | None = None
) -> DeadLetterEntry | None:
    """Return the dead letter of ``task_id`` on ``queue``, or ``None`` if there is none.

    Raises:
        ConfigError: see :func:`dead_letter_store`.
        DriverError: the broker call failed.

    """
    store = await dead_letter_store(handle, driver)
    for entry in await store.dead_letters(queue, limit=SCAN_LIMIT):
        if entry.task_id == task_id:
            return entry
    return None


def read_message(entry: DeadLetterEntry) -> TaskMessage | str:
    """Return the entry's decoded message, or why it cannot be decoded in this process."""
    try:
        return decode(entry.body)
    except SerializationError as exc:
        return str(exc)


def first_attempt(body: bytes) -> bytes:
    """Return ``body`` reset to attempt 1, or unchanged when it is not a task message."""
    try:
        return with_attempt(body, 1)
    except SerializationError as exc:
        logger.warning("requeueing a dead letter unchanged (%s)", exc)
        return body


async def requeue_dead_letters(
    handle: Handle | None,
    queue: str,
    task_ids: Sequence[str] | None = None,
    *,
    driver: str | None = None,
) -> int:
    """Move dead letters back to ``queue`` at attempt 1, keeping their task ids.

    Args:
        handle: the handle (default: the current one).
        queue: the queue whose dead letters to requeue.
        task_ids: only these; ``None`` means all.
        driver: a driver name other than ``config.driver``.

    Returns:
        How many were requeued.

    Raises:
        ConfigError: see :func:`dead_letter_store`, or the driver cannot rewrite a requeued
            message (its ``requeue_dead`` has no ``rewrite`` parameter).
        DriverError: the broker call failed.
        TypeError: ``task_ids`` is a ``str`` (pass a list: ``["3f2a..."]``).

    """
    ids = None if task_ids is None else name_list(task_ids, "task_ids")
    store = await dead_letter_store(handle, driver)
    if "rewrite" not in inspect.signature(store.requeue_dead).parameters:
        name = getattr(store, "name", type(store).__name__)
        raise ConfigError(
            f"the {name} driver cannot reset the attempt count of a requeued task "
            "(its requeue_dead has no rewrite parameter)"
        )
    return await store.requeue_dead(queue, ids, rewrite=first_attempt)


async def purge_dead_letters(
    handle: Handle | None, queue: str, *, driver: str | None = None
) -> int:
    """Delete every dead letter of ``queue``; return how many there were.

    Raises:
        ConfigError: see :func:`dead_letter_store`.
        DriverError: the broker call failed.

    """
    store = await dead_letter_store(handle, driver)
    return await store.purge_dead(queue)
