"""Event records: the nine types, frozen values, UTC timestamps and the JSON form."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import attrs
import pytest

from asynctasq.events.emitters import event_json
from asynctasq.events.records import (
    TASK_EVENTS,
    WORKER_EVENTS,
    EventType,
    TaskEvent,
    WorkerEvent,
    event_dict,
    utc,
)

AT = datetime(2025, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)


def test_there_are_the_nine_event_types_of_the_spec() -> None:
    assert [t.value for t in EventType] == [
        "task_enqueued",
        "task_started",
        "task_completed",
        "task_failed",
        "task_retrying",
        "task_cancelled",
        "worker_online",
        "worker_heartbeat",
        "worker_offline",
    ]
    assert len(TASK_EVENTS) == 6
    assert len(WORKER_EVENTS) == 3


def test_an_event_type_is_its_wire_name() -> None:
    assert EventType.TASK_RETRYING == "task_retrying"
    assert EventType("worker_online") is EventType.WORKER_ONLINE


def test_events_are_frozen() -> None:
    event = TaskEvent(EventType.TASK_STARTED, "id", "m:f", "q", AT)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.queue = "other"  # type: ignore[misc]


def test_utc_turns_epoch_seconds_into_an_aware_utc_datetime() -> None:
    assert utc(0.5) == datetime(1970, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert utc(0.5).tzinfo is UTC


def test_a_task_event_as_json_has_every_field_with_iso_utc_times() -> None:
    event = TaskEvent(
        EventType.TASK_RETRYING,
        task_id="3f2a",
        task_name="app.tasks:send",
        queue="emails",
        timestamp=AT,
        attempt=2,
        max_attempts=3,
        worker_id="host-1-abcdef",
        correlation_id="req-9",
        dispatched_at=utc(1_700_000_000.0),
        started_at=AT,
        duration_ms=12.5,
        error_type="ValueError",
        error_message="boom",
        delay_seconds=4.0,
    )
    assert json.loads(event_json(event)) == {
        "event_type": "task_retrying",
        "task_id": "3f2a",
        "task_name": "app.tasks:send",
        "queue": "emails",
        "timestamp": "2025-01-31T12:00:00.123456+00:00",
        "attempt": 2,
        "max_attempts": 3,
        "worker_id": "host-1-abcdef",
        "correlation_id": "req-9",
        "dispatched_at": "2023-11-14T22:13:20+00:00",
        "started_at": "2025-01-31T12:00:00.123456+00:00",
        "duration_ms": 12.5,
        "error_type": "ValueError",
        "error_message": "boom",
        "result": None,
        "delay_seconds": 4.0,
    }


def test_a_worker_event_as_a_dict_lists_its_queues() -> None:
    event = WorkerEvent(
        EventType.WORKER_HEARTBEAT,
        "w-1",
        "host",
        42,
        ("high", "low"),
        10,
        AT,
        3,
        100,
        2,
        60.0,
        "redis",
    )
    assert event_dict(event) == {
        "event_type": "worker_heartbeat",
        "worker_id": "w-1",
        "hostname": "host",
        "pid": 42,
        "queues": ["high", "low"],
        "concurrency": 10,
        "timestamp": "2025-01-31T12:00:00.123456+00:00",
        "active": 3,
        "processed": 100,
        "failed": 2,
        "uptime_seconds": 60.0,
        "driver": "redis",
    }
