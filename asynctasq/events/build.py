"""Building the emitters and the event bus from the configuration record.

Which emitters (SPEC §6):

* a :class:`LoggingEventEmitter`, always, unless the user passed one (theirs replaces it,
  so each event is logged once);
* a :class:`RedisEventEmitter` when ``events.enable_event_emitter_redis`` or
  ``events.enable_all`` is set: channel ``events.channel``, URL ``events.redis_url`` or else
  ``redis.url`` (with ``redis.password``);
* the user's emitters from ``init(event_emitters=[...])``, in their order.

Source: SPEC §6; seed/configuration.md "Events Configuration".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asynctasq.config.records import Config
from asynctasq.events.bus import EventBus
from asynctasq.events.emitters import LoggingEventEmitter, RedisEventEmitter


def redis_emitter(config: Config) -> RedisEventEmitter | None:
    """Return the Redis emitter the configuration asks for, or ``None`` when it is off."""
    events = config.events
    if not (events.enable_event_emitter_redis or events.enable_all):
        return None
    if events.redis_url is not None:
        return RedisEventEmitter(events.redis_url, events.channel)
    return RedisEventEmitter(config.redis.url, events.channel, password=config.redis.password)


def build_emitters(config: Config, extra: Iterable[Any] = ()) -> list[Any]:
    """Return the emitters for ``config`` plus the user's ``extra`` ones, in delivery order.

    Args:
        config: the resolved configuration (reads the ``events`` and ``redis`` groups).
        extra: emitters passed to ``init(event_emitters=[...])``.

    Returns:
        The logging emitter (the user's own if ``extra`` has one), the Redis emitter when
        enabled, then the rest of ``extra``.

    """
    users = list(extra)
    found: list[Any] = []
    if not any(isinstance(e, LoggingEventEmitter) for e in users):
        found.append(LoggingEventEmitter())
    redis = redis_emitter(config)
    if redis is not None:
        found.append(redis)
    return found + users


def build_bus(config: Config, extra: Iterable[Any] = (), *, close_extra: bool = False) -> EventBus:
    """Return a new :class:`EventBus` over :func:`build_emitters`.

    Args:
        config: the resolved configuration.
        extra: the user's emitters.
        close_extra: the bus also closes ``extra`` when it closes (their handle owns them);
            the emitters it built from the configuration it always closes.

    """
    users = list(extra)
    emitters = build_emitters(config, users)
    owned = [e for e in emitters if close_extra or not any(e is u for u in users)]
    return EventBus(emitters, owned=owned)
