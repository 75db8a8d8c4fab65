"""The logging and Redis emitters, and which emitters the configuration builds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from asynctasq import Config, EventsConfig, RedisConfig, configured, init
from asynctasq.events.build import build_bus, build_emitters
from asynctasq.events.emitters import EventEmitter, LoggingEventEmitter, RedisEventEmitter
from asynctasq.events.records import EventType, TaskEvent, WorkerEvent

AT = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
TASK = TaskEvent(
    EventType.TASK_COMPLETED, "3f2a", "app:send", "emails", AT, 1, 3, "w-1", duration_ms=2.5
)


def kinds(emitters: list[object]) -> list[str]:
    return [type(e).__name__ for e in emitters]


def test_by_default_only_the_logging_emitter_is_built() -> None:
    assert kinds(build_emitters(Config())) == ["LoggingEventEmitter"]


@pytest.mark.parametrize(
    "events", [EventsConfig(enable_event_emitter_redis=True), EventsConfig(enable_all=True)]
)
def test_the_redis_emitter_is_built_when_enabled(events: EventsConfig) -> None:
    emitters = build_emitters(Config(events=events))
    assert kinds(emitters) == ["LoggingEventEmitter", "RedisEventEmitter"]


def test_the_redis_emitter_uses_the_events_url_or_else_the_redis_url_and_password() -> None:
    main = RedisConfig(url="redis://queue-redis:6379", password="pw")
    [_, own] = build_emitters(
        Config(
            redis=main,
            events=EventsConfig(
                enable_event_emitter_redis=True,
                redis_url="redis://events-redis:6379",
                channel="asynctasq:prod:events",
            ),
        )
    )
    assert (own.redis_url, own.channel, own._password) == (
        "redis://events-redis:6379",
        "asynctasq:prod:events",
        None,
    )
    [_, shared] = build_emitters(Config(redis=main, events=EventsConfig(enable_all=True)))
    assert (shared.redis_url, shared.channel, shared._password) == (
        "redis://queue-redis:6379",
        "asynctasq:events",
        "pw",
    )


def test_a_redis_emitter_made_without_arguments_reads_the_current_configuration() -> None:
    with configured({"redis": {"url": "redis://h:1"}, "events": {"channel": "c"}}):
        emitter = RedisEventEmitter()
    assert (emitter.redis_url, emitter.channel) == ("redis://h:1", "c")


def test_the_redis_emitter_repr_masks_a_password() -> None:
    emitter = RedisEventEmitter("redis://:s3cret@h:6379", "c")
    assert "s3cret" not in repr(emitter)


def test_user_emitters_come_last_and_a_user_logging_emitter_replaces_the_default() -> None:
    class Mine:
        def emit(self, event: object) -> None: ...

    mine, logs = Mine(), LoggingEventEmitter(level=logging.INFO)
    default, user = build_emitters(Config(), [mine])
    assert isinstance(default, LoggingEventEmitter)
    assert user is mine
    assert build_emitters(Config(), [mine, logs]) == [mine, logs]


def test_the_bus_owns_only_the_emitters_it_built() -> None:
    class Mine:
        def emit(self, event: object) -> None: ...

    mine = Mine()
    bus = build_bus(Config(events=EventsConfig(enable_all=True)), [mine])
    assert kinds(bus._owned) == ["LoggingEventEmitter", "RedisEventEmitter"]
    assert bus.emitters[-1] is mine


def test_the_seed_example_with_a_custom_logging_emitter_works_as_written() -> None:
    # seed/configuration.md, "init()": "Example with custom event emitters", verbatim.
    from asynctasq import init, LoggingEventEmitter  # noqa: I001

    # Create custom emitter
    custom_emitter = LoggingEventEmitter()

    # Initialize with additional emitters
    # Config can come from environment variables or .env file
    init(
        event_emitters=[custom_emitter]
    )  # fmt: skip

    from asynctasq.handle import current_handle

    handle = current_handle()
    assert handle.event_emitters == (custom_emitter,)
    assert build_emitters(handle.config, handle.event_emitters) == [custom_emitter]


def test_every_emitter_satisfies_the_public_protocol() -> None:
    assert isinstance(LoggingEventEmitter(), EventEmitter)
    assert isinstance(RedisEventEmitter("redis://h", "c"), EventEmitter)


def test_the_logging_emitter_logs_one_line_with_the_fields_as_extra(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = LoggingEventEmitter(level=logging.INFO)
    with caplog.at_level(logging.INFO, logger="asynctasq.events"):
        emitter.emit(TASK)
    [record] = caplog.records
    assert record.name == "asynctasq.events"
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "task_completed task=3f2a name=app:send queue=emails attempt=1/3 worker=w-1 duration=2.5ms"
    )
    assert record.event_type == "task_completed"  # type: ignore[attr-defined]
    assert record.task_id == "3f2a"  # type: ignore[attr-defined]
    assert record.duration_ms == 2.5  # type: ignore[attr-defined]
    assert record.timestamp == "2025-01-31T12:00:00+00:00"  # type: ignore[attr-defined]


def test_the_logging_emitter_is_disabled_while_its_level_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = LoggingEventEmitter()  # DEBUG
    with caplog.at_level(logging.INFO, logger="asynctasq.events"):
        assert not emitter.enabled()
        emitter.emit(TASK)
    assert caplog.records == []
    with caplog.at_level(logging.DEBUG, logger="asynctasq.events"):
        assert emitter.enabled()


def test_a_worker_event_logs_its_counters(caplog: pytest.LogCaptureFixture) -> None:
    event = WorkerEvent(
        EventType.WORKER_OFFLINE, "w-1", "host", 1, ("a", "b"), 4, AT, 0, 10, 1, 61.0, "memory"
    )
    with caplog.at_level(logging.DEBUG, logger="asynctasq.events"):
        LoggingEventEmitter().emit(event)
    assert caplog.records[0].getMessage() == (
        "worker_offline worker=w-1 queues=a,b active=0 processed=10 failed=1 uptime=61s"
    )


def test_init_refuses_an_object_without_emit() -> None:
    with pytest.raises(TypeError, match=r"event_emitters\[0\]"):
        init(event_emitters=[object()])
