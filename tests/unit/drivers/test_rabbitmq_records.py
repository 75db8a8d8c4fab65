"""The RabbitMQ monitoring queues' names, arguments and records, without a broker."""

from __future__ import annotations

import attrs
import pytest

from asynctasq.drivers import rabbitmq_records as rec
from asynctasq.drivers.protocol import CompletedTask, WorkerInfo

WORKER = WorkerInfo(
    worker_id="web-1-4242-a1b2c3",
    hostname="web-1",
    pid=4242,
    queues=("emails", "default"),
    concurrency=10,
    driver="rabbitmq",
    started_at=1_700_000_000.5,
    active=2,
    processed=1500,
    failed=7,
)


@pytest.mark.parametrize(
    ("queue", "taken"),
    [
        ("emails_dead", "names ending in '_dead' are taken"),
        ("emails_delayed", "names ending in '_delayed' are taken"),
        ("emails_completed", "names ending in '_completed' are taken"),
        ("app.workers", "the RabbitMQ driver uses 'app.workers' for monitoring"),
        ("app.queues", "the RabbitMQ driver uses 'app.queues' for monitoring"),
        ("app.reader-lock", "the RabbitMQ driver uses 'app.reader-lock' for monitoring"),
        ("amq.gen-1", "RabbitMQ reserves names starting with 'amq.'"),
        ("q" * 246, "at most 245 bytes"),
    ],
)
def test_names_the_driver_or_rabbitmq_keeps_are_refused_as_task_queues(
    queue: str, taken: str
) -> None:
    problem = rec.queue_name_problem(queue, "app")
    assert problem is not None
    assert problem.startswith(taken)


@pytest.mark.parametrize("queue", ["emails", "dead", "other.workers", "q" * 245, "é_deadline"])
def test_other_names_are_accepted(queue: str) -> None:
    assert rec.queue_name_problem(queue, "app") is None


def test_names_follow_the_exchange_and_the_queue() -> None:
    assert rec.catalog_name("asynctasq") == "asynctasq.queues"
    assert rec.workers_name("asynctasq") == "asynctasq.workers"
    assert rec.lock_name("asynctasq") == "asynctasq.reader-lock"
    assert rec.completed_name("emails") == "emails_completed"


def test_bounded_queues_drop_their_oldest_messages() -> None:
    assert rec.bounded(1000) == {"x-max-length": 1000, "x-overflow": "drop-head"}


def test_a_heartbeat_carries_the_worker_stamped_and_expires_after_its_ttl() -> None:
    message = rec.heartbeat(WORKER, 1_700_000_123.25, 30_000, "id-1")
    assert rec.read_worker(message.body) == (
        WORKER.worker_id,
        attrs.evolve(WORKER, last_heartbeat=1_700_000_123.25),
    )
    assert message.properties.expiration == "30000"
    assert message.delivery_mode == 2
    assert message.headers == {rec.WORKER_ID: WORKER.worker_id, rec.RECORD: "heartbeat"}


@pytest.mark.parametrize("ttl_ms", [1, 290, 1001, 4_100, 86_400_000])
def test_the_expiration_is_the_exact_ttl_in_milliseconds(ttl_ms: int) -> None:
    assert rec.heartbeat(WORKER, 0.0, ttl_ms, "id").properties.expiration == str(ttl_ms)


def test_a_removed_record_names_the_worker_and_no_info() -> None:
    message = rec.removed("w-1", 90_000, "id-2")
    assert rec.read_worker(message.body) == ("w-1", None)
    assert message.properties.expiration == "90000"


def test_catalog_and_completed_records_round_trip() -> None:
    assert rec.read_catalog(rec.catalog_record("emails", "id").body) == "emails"
    task = CompletedTask("emails", "t1", "tasks:send", 2, "w-1", 1.0, 2.0, 2.5, 500.0)
    assert rec.read_completed(rec.completed(task, "id").body) == task


@pytest.mark.parametrize(
    "read", [rec.read_worker, rec.read_completed, rec.read_catalog], ids=lambda f: f.__name__
)
def test_a_foreign_body_is_a_value_error(read: object) -> None:
    with pytest.raises(ValueError, match="not a"):
        read(b"")  # type: ignore[operator]
