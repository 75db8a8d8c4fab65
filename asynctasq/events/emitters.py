"""Event emitters: the protocol, the logging emitter and the Redis Pub/Sub emitter.

An emitter is any object with ``emit(event)``: a coroutine function (awaited) or a plain
function (called in a worker thread, so a slow one never blocks the event loop; the
logging emitter is called directly, as logging is meant to be). A function taking the
event (``async def`` or ``def``) is an emitter too. Optional methods:

* ``enabled() -> bool``: ``False`` means "not listening now"; when no emitter listens,
  events are not even built (the logging emitter answers whether its logger is enabled
  for its level, so it costs nothing while that level is off);
* ``emit_many(events)`` (coroutine): receive a batch at once (the Redis emitter publishes
  a batch in one round trip);
* ``close()`` (coroutine or plain): release connections; called once the events of an
  event loop were delivered at close: when the handle the emitter was given to (or that
  built it) is closed, and when the event loop that delivered events ends
  (``asyncio.run()`` returning). The emitter may receive events again afterwards (from
  another loop, or a handle used again): reopen what it needs on the next ``emit``.

Emitters never run on a task's or a dispatch's path: events go through a bounded queue per
emitter (:mod:`asynctasq.events.bus`); an emitter whose ``emit``, ``emit_many``,
``enabled`` or ``close`` raises, or that falls behind, loses events, counted and logged,
nothing else.

Source: SPEC §6; seed/configuration.md "init()" (``init(event_emitters=[...])``) and
"Events Configuration".
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from asynctasq.config.mask import mask_url
from asynctasq.config.records import Config
from asynctasq.events.records import Event, TaskEvent, event_dict

if TYPE_CHECKING:
    from asynctasq.drivers.redis_events import RedisPublisher


@runtime_checkable
class EventEmitter(Protocol):
    """What ``init(event_emitters=[...])`` accepts: an object with ``emit(event)``.

    ``emit`` may be ``async def`` (awaited) or ``def`` (run in a worker thread). A plain
    or async function taking the event is accepted too. See this module's docstring for
    the optional ``enabled``, ``emit_many`` and ``close``.
    """

    def emit(self, event: Event) -> Awaitable[None] | None:
        """Receive one task or worker event; raising loses only this event."""


def _task_text(event: TaskEvent) -> str:
    parts = [
        f"{event.event_type.value} task={event.task_id or '-'} name={event.task_name or '-'}",
        f"queue={event.queue} attempt={event.attempt}/{event.max_attempts or '?'}",
    ]
    if event.worker_id:
        parts.append(f"worker={event.worker_id}")
    if event.duration_ms is not None:
        parts.append(f"duration={event.duration_ms:.1f}ms")
    if event.delay_seconds:
        parts.append(f"delay={event.delay_seconds:g}s")
    if event.error_type:
        parts.append(f"error={event.error_type}: {event.error_message}")
    return " ".join(parts)


def event_text(event: Event) -> str:
    """Return a one-line summary of ``event``, e.g. ``task_completed task=3f.. name=m:f ...``."""
    if isinstance(event, TaskEvent):
        return _task_text(event)
    return (
        f"{event.event_type.value} worker={event.worker_id} queues={','.join(event.queues)} "
        f"active={event.active} processed={event.processed} failed={event.failed} "
        f"uptime={event.uptime_seconds:.0f}s"
    )


class LoggingEventEmitter:
    """Log every event through stdlib ``logging``, its fields as the record's ``extra``.

    Always on: when no ``LoggingEventEmitter`` is passed to ``init()``, one with the
    defaults is added; pass your own to choose the logger or level. Each record's message
    is a one-line summary; its attributes hold every event field (``record.event_type``,
    ``record.task_id``, ``record.duration_ms``, ...; values as in the JSON form), for
    structured log formatters.

    Args:
        logger: the logger or its name (default ``"asynctasq.events"``).
        level: the level events are logged at (default ``logging.DEBUG``, so a worker at
            the usual INFO level prints its one line per task and no event lines; set
            ``logging.getLogger("asynctasq.events").setLevel(logging.DEBUG)`` or pass
            ``level=logging.INFO`` to see them).

    Example:
        >>> from asynctasq import init, LoggingEventEmitter
        >>> handle = init(event_emitters=[LoggingEventEmitter(level=logging.INFO)])

    """

    def __init__(
        self, logger: logging.Logger | str = "asynctasq.events", level: int = logging.DEBUG
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level

    def __repr__(self) -> str:
        return f"LoggingEventEmitter(logger={self.logger.name!r}, level={self.level!r})"

    def enabled(self) -> bool:
        """Return whether the logger would log at this emitter's level right now."""
        return self.logger.isEnabledFor(self.level)

    def emit(self, event: Event) -> None:
        """Log ``event`` (nothing when the logger is off for the level)."""
        if self.logger.isEnabledFor(self.level):
            self.logger.log(self.level, "%s", event_text(event), extra=event_dict(event))


def event_json(event: Event) -> bytes:
    """Return the JSON the Redis emitter publishes for ``event`` (UTF-8)."""
    return json.dumps(event_dict(event), separators=(",", ":"), default=str).encode()


class RedisEventEmitter:
    """Publish every event as JSON on a Redis Pub/Sub channel.

    Turned on by ``events.enable_event_emitter_redis`` (or ``events.enable_all``); then
    it publishes on ``events.channel`` to ``events.redis_url``, or else ``redis.url`` (with
    ``redis.password``). Watch it with ``redis-cli SUBSCRIBE asynctasq:events``. The JSON
    object has every field of the event (:func:`~asynctasq.events.records.event_dict`).

    It connects on first use, one connection per event loop. Pub/Sub does not store: a
    subscriber that is not connected misses events.

    Args:
        redis_url: the Redis URL; ``None`` takes it from the current configuration
            (``Config.get()``): ``events.redis_url`` or else ``redis.url``.
        channel: the channel; ``None`` takes ``events.channel``.
        password: a password given apart from the URL; ``None`` takes ``redis.password``
            when the URL came from ``redis.url``.

    Raises:
        ConfigError: a value is taken from a configuration that is invalid.

    """

    def __init__(
        self,
        redis_url: str | None = None,
        channel: str | None = None,
        *,
        password: str | None = None,
    ) -> None:
        if redis_url is None or channel is None:
            config = Config.get()
            if redis_url is None:
                redis_url = config.events.redis_url
                if redis_url is None:
                    redis_url = config.redis.url
                    password = password if password is not None else config.redis.password
            channel = channel if channel is not None else config.events.channel
        self.redis_url = redis_url
        self.channel = channel
        self._password = password
        self._publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisPublisher] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return (
            f"RedisEventEmitter(redis_url={mask_url(self.redis_url)!r}, channel={self.channel!r})"
        )

    def _publisher(self) -> RedisPublisher:
        loop = asyncio.get_running_loop()
        found = self._publishers.get(loop)
        if found is None:
            from asynctasq.drivers.redis_events import build_publisher

            found = self._publishers[loop] = build_publisher(
                self.redis_url, password=self._password
            )
        return found

    async def emit(self, event: Event) -> None:
        """Publish one event.

        Raises:
            DriverError: Redis failed.

        """
        await self._publisher().publish(self.channel, [event_json(event)])

    async def emit_many(self, events: Sequence[Event]) -> None:
        """Publish events in order, in one round trip.

        Raises:
            DriverError: Redis failed.

        """
        await self._publisher().publish(self.channel, [event_json(e) for e in events])

    async def close(self) -> None:
        """Close this event loop's connection, if any (the next emit reconnects)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        found = self._publishers.pop(loop, None)
        if found is not None:
            await found.close()
