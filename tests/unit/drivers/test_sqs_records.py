"""The SQS driver's monitoring records: worker tags within SQS' tag limits, completed bodies."""

from __future__ import annotations

import re

import attrs
import pytest

from asynctasq.config.records import SQSConfig
from asynctasq.drivers import sqs_records as records
from asynctasq.drivers.protocol import CompletedTask, WorkerInfo
from asynctasq.drivers.sqs_client import SQSConnection

ALLOWED = re.compile(r"[\w\s.:/=+\-@]*")
"""The characters SQS accepts in tag keys and values."""

WORKER = WorkerInfo(
    worker_id="web-1-4242-a1b2c3",
    hostname="web-1.example.com",
    pid=4242,
    queues=("high", "default"),
    concurrency=10,
    driver="sqs",
    started_at=1_700_000_000.5,
    active=2,
    processed=1500,
    failed=7,
)


def test_a_worker_tag_round_trips_with_the_time_it_was_heard_and_its_expiry() -> None:
    value = records.pack_worker(WORKER, 1_700_000_100.25, 30)
    found, expires = records.unpack_worker(records.tag_key(WORKER.worker_id), value)
    assert found == attrs.evolve(WORKER, last_heartbeat=1_700_000_100.25)
    assert expires == 1_700_000_130.25
    assert ALLOWED.fullmatch(value)
    assert records.tag_key(WORKER.worker_id) == "worker:web-1-4242-a1b2c3"


def test_queues_that_do_not_fit_in_256_characters_are_left_out_from_the_end() -> None:
    queues = tuple(f"queue-number-{n:02d}" for n in range(30))
    value = records.pack_worker(attrs.evolve(WORKER, queues=queues), 1.0, 30)
    found, _ = records.unpack_worker("worker:w", value)
    assert len(value) <= records.VALUE_MAX
    assert 0 < len(found.queues) < len(queues)
    assert found.queues == queues[: len(found.queues)]


def test_a_host_name_too_long_for_the_tag_is_shortened_and_odd_characters_replaced() -> None:
    worker = attrs.evolve(WORKER, hostname="h" * 300 + " #x", queues=("a",))
    value = records.pack_worker(worker, 1.0, 30)
    found, _ = records.unpack_worker("worker:w", value)
    assert len(value) == records.VALUE_MAX
    assert set(found.hostname) == {"h"}
    assert found.queues == ()
    odd = records.pack_worker(attrs.evolve(WORKER, hostname="my host#1"), 1.0, 30)
    assert ALLOWED.fullmatch(odd)
    assert records.unpack_worker("worker:w", odd)[0].hostname == "my_host_1"


def test_a_long_worker_id_keeps_its_unique_tail_within_128_characters() -> None:
    worker_id = "h" * 200 + "-4242-a1b2c3"
    key = records.tag_key(worker_id)
    assert len(key) == records.KEY_MAX
    assert key.endswith("-4242-a1b2c3")
    assert key.startswith(records.TAG_PREFIX)


@pytest.mark.parametrize(
    ("key", "value"),
    [("team", "1 2 3"), ("worker:w", "payments"), ("worker:w", "2 " + "x " * 11)],
)
def test_a_tag_not_written_by_the_driver_is_refused(key: str, value: str) -> None:
    with pytest.raises(ValueError, match="not a worker"):
        records.unpack_worker(key, value)


def test_a_completed_record_round_trips_with_its_order() -> None:
    task = CompletedTask("q", "t-1", "m:f", 2, "w-1", 1.0, 2.0, 2.25, 250.0)
    assert records.parse_completed(records.completed_body(task, 7)) == (task, 7)
    with pytest.raises(ValueError, match="not an asynctasq completed-task record"):
        records.parse_completed('{"queue": "q"}')


def test_side_queues_count_for_their_task_queue_and_the_registry_for_none() -> None:
    config = SQSConfig(
        region_name="us-east-1",
        queue_url_prefix="https://sqs.us-east-1.amazonaws.com/123456789012/app-",
    )
    conn = SQSConnection(config, pool_size=1)
    assert conn.name_prefix == "app-"
    assert conn.queue_of("app-emails") == "emails"
    assert conn.queue_of("app-emails_dead") == "emails"
    assert conn.queue_of("app-emails_completed") == "emails"
    assert conn.queue_of("app-asynctasq-workers") is None
    assert conn.queue_of("other-emails") is None
    assert conn.queue_of("app-") is None
    assert conn.registry_url().endswith("/123456789012/app-asynctasq-workers")
