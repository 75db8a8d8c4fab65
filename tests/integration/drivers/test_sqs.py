"""SQS-only behaviour on moto's server: long delays in hops (C11), queue creation, errors,
and the monitoring stores SQS can hold (queue list, worker tags, completed-task queues)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from asynctasq.config.records import Config
from asynctasq.drivers import build_driver
from asynctasq.drivers.protocol import (
    CompletedTask,
    DeadLetterEntry,
    Outgoing,
    QueueSizes,
    WorkerInfo,
)
from asynctasq.drivers.sqs import SQSDriver
from asynctasq.drivers.sqs_client import REGISTRY_QUEUE
from asynctasq.errors import ConfigError, DriverError
from tests.integration.sqs_server import (
    ACCOUNT,
    KEY_ID,
    SECRET,
    client,
    delete_queues,
    moto_endpoint,
    sqs_config,
    sqs_env,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def endpoint() -> str:
    return moto_endpoint()


@pytest.fixture
def queue(endpoint: str) -> Iterator[str]:
    name = f"s-{uuid.uuid4().hex[:16]}"
    yield name
    delete_queues(endpoint, [name])


async def opened(endpoint: str, **settings: Any) -> SQSDriver:
    driver = build_driver(Config(driver="sqs", sqs=sqs_config(endpoint, **settings)))
    assert isinstance(driver, SQSDriver)
    await driver.open()
    return driver


@pytest.fixture
async def driver(endpoint: str) -> AsyncIterator[SQSDriver]:
    found = await opened(endpoint)
    yield found
    await found.close()


def sent_params(driver: SQSDriver) -> list[dict[str, Any]]:
    """Record the parameters of every SendMessage / SendMessageBatch entry the driver makes."""
    seen: list[dict[str, Any]] = []

    def single(params: dict[str, Any], **_: Any) -> None:
        seen.append(params)

    def batch(params: dict[str, Any], **_: Any) -> None:
        seen.extend(params["Entries"])

    events = driver._conn._client.meta.events
    events.register("provide-client-params.sqs.SendMessage", single)
    events.register("provide-client-params.sqs.SendMessageBatch", batch)
    return seen


async def test_a_delay_of_an_hour_is_accepted_and_stored_with_its_due_time(
    driver: SQSDriver, queue: str
) -> None:
    # C11.1: no InvalidParameterValue escapes; the target time is persisted.
    seen = sent_params(driver)
    before = time.time()
    await driver.enqueue(Outgoing(queue, b"later", delay_seconds=3600))
    params = seen[-1]  # earlier: the same send, before the queue was created
    assert {p["DelaySeconds"] for p in seen} == {900}
    due = float(params["MessageAttributes"]["asynctasq-due"]["StringValue"])
    assert before + 3600 <= due <= time.time() + 3600
    assert await driver.sizes(queue) == QueueSizes(0, 1, 0, 0)


@pytest.mark.parametrize("attempt", [1, 3, 5])
async def test_a_retry_backoff_past_900_seconds_is_stored_without_an_illegal_delay(
    driver: SQSDriver, queue: str, attempt: int
) -> None:
    # C11.3: exponential backoff base 200 s: 200, 800, 3200 s; every send is legal.
    await driver.enqueue(Outgoing(queue, b"attempt"))
    [delivery] = await driver.dequeue([queue], limit=1, wait_seconds=1)
    seen = sent_params(driver)
    await driver.retry(delivery, Outgoing(queue, b"next", delay_seconds=200.0 * 2 ** (attempt - 1)))
    assert len(seen) == 1
    assert 0 < seen[0]["DelaySeconds"] <= 900
    assert await driver.sizes(queue) == QueueSizes(0, 1, 0, 0)


async def test_a_long_delay_hops_and_is_delivered_once_never_early(
    endpoint: str, queue: str
) -> None:
    # C11.2 with a scaled clock: hops of 2 s, a delay of 5 s.
    driver = await opened(endpoint, delay_hop_seconds=2)
    try:
        seen = sent_params(driver)
        started = time.monotonic()
        await driver.enqueue(Outgoing(queue, b"hop", delay_seconds=5, visibility_timeout_seconds=7))
        got = []
        with anyio.fail_after(15):
            while not got:
                got = await driver.dequeue([queue], limit=5, wait_seconds=1)
        assert time.monotonic() - started >= 5
        assert [(d.body, d.delivery_count, d.visibility_timeout_seconds) for d in got] == [
            (b"hop", 1, 7.0)
        ]
        assert all(0 < p["DelaySeconds"] <= 2 for p in seen)
        assert len(seen) >= 3  # the first send and at least two re-sent hops
        await driver.ack(got)
        assert await driver.dequeue([queue], limit=5, wait_seconds=1) == []
        assert await driver.sizes(queue) == QueueSizes(0, 0, 0, 0)
    finally:
        await driver.close()


async def test_a_missing_queue_is_an_error_naming_it_when_creation_is_off(
    endpoint: str, queue: str
) -> None:
    driver = await opened(endpoint, create_queues=False)
    try:
        with pytest.raises(DriverError, match=f"queue '.*/{queue}' does not exist") as caught:
            await driver.enqueue(Outgoing(queue, b"x"))
        assert "ASYNCTASQ_SQS_CREATE_QUEUES" in str(caught.value)
        assert await driver.sizes(queue) == QueueSizes(0, 0, 0, 0)  # sizes never create
    finally:
        await driver.close()


async def test_an_unreachable_endpoint_fails_open_without_showing_the_secret() -> None:
    with pytest.raises(DriverError, match="sqs open failed") as caught:
        await opened("http://127.0.0.1:9")
    assert SECRET not in str(caught.value)


async def test_a_stale_receipt_is_never_used_to_delete_the_redelivered_message(
    driver: SQSDriver, queue: str
) -> None:
    # SQS accepts old receipt handles; the driver's own lease deadline keeps them unused.
    await driver.enqueue(Outgoing(queue, b"work", visibility_timeout_seconds=1))
    [stale] = await driver.dequeue([queue], limit=1, wait_seconds=1)
    again = []
    with anyio.fail_after(10):
        while not again:
            again = await driver.dequeue([queue], limit=1, wait_seconds=1)
    await driver.extend([stale])
    await driver.ack([stale])
    assert (await driver.sizes(queue)).in_flight == 1
    assert again[0].delivery_count == 2
    await driver.ack(again)
    assert await driver.sizes(queue) == QueueSizes(0, 0, 0, 0)


async def test_more_than_ten_messages_come_in_one_dequeue(driver: SQSDriver, queue: str) -> None:
    await driver.enqueue_many([Outgoing(queue, b"%d" % i) for i in range(25)])
    got = await driver.dequeue([queue], limit=25, wait_seconds=1)
    assert sorted(int(d.body) for d in got) == list(range(25))
    await driver.ack(got)
    assert await driver.sizes(queue) == QueueSizes(0, 0, 0, 0)


def test_a_script_that_never_closes_its_handle_leaves_no_unclosed_session(
    endpoint: str, queue: str, tmp_path: Path
) -> None:
    script = tmp_path / "dispatch.py"
    script.write_text(
        "import asyncio, asynctasq\n"
        "@asynctasq.task\n"
        "async def hello() -> None: ...\n"
        "async def main() -> None:\n"
        "    asynctasq.init()\n"
        f"    await hello().on_queue({queue!r}).dispatch()\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    env.update(sqs_env(endpoint), PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")


async def test_what_a_losing_poll_brings_is_released_without_counting_a_delivery(
    driver: SQSDriver, endpoint: str
) -> None:
    # Waiting on two queues polls both; the poll that loses the race is never cut off, and
    # what it brings (or whatever exceeds the limit) goes back with its count undone.
    first, second = f"s-{uuid.uuid4().hex[:16]}", f"s-{uuid.uuid4().hex[:16]}"
    try:
        await driver.enqueue_many([Outgoing(first, b"warm"), Outgoing(second, b"warm")])
        await driver.ack(await driver.dequeue([first, second], limit=2, wait_seconds=0))
        waiting = asyncio.create_task(driver.dequeue([first, second], limit=1, wait_seconds=5))
        await asyncio.sleep(0.3)  # bounded: both polls are waiting
        await driver.enqueue_many([Outgoing(first, b"one"), Outgoing(second, b"two")])
        with anyio.fail_after(10):
            got = await waiting
        seen = [(d.body, d.delivery_count) for d in got]
        with anyio.fail_after(15):
            while len(seen) < 2:
                more = await driver.dequeue([first, second], limit=5, wait_seconds=1)
                seen += [(d.body, d.delivery_count) for d in more]
                got += more
        assert sorted(seen) == [(b"one", 1), (b"two", 1)]
        await driver.ack(got)
    finally:
        delete_queues(endpoint, [first, second])


@pytest.fixture
def stem(endpoint: str) -> Iterator[str]:
    """A queue-name prefix of its own (``<stem>-``), so side queues are this test's alone."""
    found = f"p{uuid.uuid4().hex[:12]}"
    yield found
    delete_queues(endpoint, [f"{found}-{name}" for name in ("a", "b", "c", REGISTRY_QUEUE)])


async def prefixed(endpoint: str, stem: str) -> SQSDriver:
    return await opened(endpoint, queue_url_prefix=f"{endpoint}/{ACCOUNT}/{stem}-")


def worker(worker_id: str) -> WorkerInfo:
    return WorkerInfo(worker_id, "host-a", 42, ("a",), 4, "sqs", 1_700_000_000.5)


async def test_queue_names_are_the_queues_under_the_prefix_with_side_queues_folded_in(
    endpoint: str, stem: str, queue: str
) -> None:
    driver = await prefixed(endpoint, stem)
    try:
        await driver.enqueue(Outgoing("a", b"x"))
        await driver.enqueue(Outgoing("b", b"y"))
        [held] = await driver.dequeue(["b"], limit=1, wait_seconds=0)
        await driver.dead_letter(held, DeadLetterEntry("b", b"y", "t", "n", "E", "m", 1, 1.0))
        await driver.keep_completed([CompletedTask("c", "t", "n", 1, "w", 1.0, 2.0, 3.0, 4.0)])
        await driver.record_heartbeat(worker("w-1"), ttl_seconds=30)
        await driver.remove_worker("w-1")
        outside = await opened(endpoint)  # the plain prefix: ``queue`` is not under ``stem-``
        await outside.enqueue(Outgoing(queue, b"z"))
        await outside.close()
        assert await driver.queue_names() == ["a", "b", "c"]
    finally:
        await driver.close()


async def test_side_queues_are_created_alone_and_completed_records_kept_an_hour(
    endpoint: str, stem: str
) -> None:
    driver = await prefixed(endpoint, stem)
    try:
        await driver.keep_completed([CompletedTask("c", "t", "n", 1, "w", 1.0, 2.0, 3.0, 4.0)])
        await driver.record_heartbeat(worker("w-1"), ttl_seconds=30)
        await driver.remove_worker("w-1")
    finally:
        await driver.close()
    sqs = client(endpoint)
    try:
        names = {
            url.rpartition("/")[2]
            for url in sqs.list_queues(QueueNamePrefix=f"{stem}-").get("QueueUrls", [])
        }
        url = f"{endpoint}/{ACCOUNT}/{stem}-c_completed"
        retention = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    finally:
        sqs.close()
    assert names == {f"{stem}-c_completed", f"{stem}-{REGISTRY_QUEUE}"}
    assert retention["Attributes"]["MessageRetentionPeriod"] == "3600"


async def test_workers_are_tags_of_the_registry_queue_and_other_tags_are_left_alone(
    endpoint: str, stem: str
) -> None:
    driver = await prefixed(endpoint, stem)
    registry = f"{endpoint}/{ACCOUNT}/{stem}-{REGISTRY_QUEUE}"
    sqs = client(endpoint)
    try:
        await driver.record_heartbeat(worker("w-1"), ttl_seconds=30)
        sqs.tag_queue(QueueUrl=registry, Tags={"team": "payments"})
        await driver.record_heartbeat(worker("w-gone"), ttl_seconds=0.001)
        time.sleep(0.01)  # noqa: ASYNC251 -- let w-gone's millisecond pass
        assert [w.worker_id for w in await driver.live_workers()] == ["w-1"]
        tags = sqs.list_queue_tags(QueueUrl=registry)["Tags"]
        assert set(tags) == {"team", "worker:w-1"}  # the expired tag was removed
        assert all(len(value) <= 256 for value in tags.values())
        await driver.remove_worker("w-1")
        assert sqs.list_queue_tags(QueueUrl=registry)["Tags"] == {"team": "payments"}
        assert await driver.live_workers() == []
    finally:
        sqs.close()
        await driver.close()


async def test_listing_completed_tasks_deletes_the_records_past_the_limit(
    driver: SQSDriver, queue: str, endpoint: str
) -> None:
    driver.completed_limit = 2
    tasks = [CompletedTask(queue, f"t{n}", "n", 1, "w", 1.0, 2.0, 3.0, 4.0) for n in range(5)]
    await driver.keep_completed(tasks[:3])
    await driver.keep_completed(tasks[3:])
    assert await driver.completed_count(queue) == 2  # 5 stored, 2 shown
    assert [t.task_id for t in await driver.completed_tasks(queue)] == ["t4", "t3"]
    sqs = client(endpoint)
    try:
        url = f"{endpoint}/{ACCOUNT}/{queue}_completed"
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
    finally:
        sqs.close()
    assert attributes["ApproximateNumberOfMessages"] == "2"


def receive_waits(driver: SQSDriver) -> list[int]:
    """Record the ``WaitTimeSeconds`` of every ReceiveMessage call the driver makes."""
    seen: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        seen.append(params["WaitTimeSeconds"])

    driver._conn._client.meta.events.register("provide-client-params.sqs.ReceiveMessage", record)
    return seen


async def test_an_idle_wait_of_one_second_is_one_long_poll(driver: SQSDriver, queue: str) -> None:
    await driver.enqueue(Outgoing(queue, b"warm"))
    await driver.ack(await driver.dequeue([queue], limit=1, wait_seconds=1))
    waits = receive_waits(driver)
    assert await driver.dequeue([queue], limit=1, wait_seconds=1) == []
    assert waits == [1]


async def test_an_idle_wait_on_two_queues_long_polls_each_once(
    driver: SQSDriver, endpoint: str
) -> None:
    first, second = f"s-{uuid.uuid4().hex[:16]}", f"s-{uuid.uuid4().hex[:16]}"
    try:
        await driver.enqueue_many([Outgoing(first, b"warm"), Outgoing(second, b"warm")])
        await driver.ack(await driver.dequeue([first, second], limit=2, wait_seconds=0))
        waits = receive_waits(driver)
        assert await driver.dequeue([first, second], limit=1, wait_seconds=1) == []
        # one short receive per queue for priority order, then one long poll per queue
        assert sorted(waits) == [0, 0, 1, 1]
    finally:
        delete_queues(endpoint, [first, second])


async def test_a_lease_of_a_day_is_cut_to_the_12_hours_sqs_allows_and_spares_its_neighbour(
    driver: SQSDriver, queue: str
) -> None:
    # SQS refuses a visibility timeout reaching past 12 h from the receive; once refused the
    # whole batch used to fail and every message of it stayed hidden, charged an attempt.
    await driver.enqueue_many(
        [
            Outgoing(queue, b"long", visibility_timeout_seconds=86400),
            Outgoing(queue, b"short", visibility_timeout_seconds=60),
        ]
    )
    got = await driver.dequeue([queue], limit=2, wait_seconds=1)
    leases = {d.body: d.visibility_timeout_seconds for d in got}
    assert leases[b"short"] == 60
    assert 43000 < leases[b"long"] <= 43200 - 5
    await driver.ack(got)
    assert await driver.sizes(queue) == QueueSizes(0, 0, 0, 0)


def spoil_visibility_changes(driver: SQSDriver, spoil: Any) -> None:
    """Apply ``spoil`` to the first entry of the first ChangeMessageVisibilityBatch."""
    spoiled: list[str] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        for entry in params["Entries"]:
            if not spoiled:
                spoiled.append(entry["ReceiptHandle"])
            if entry["ReceiptHandle"] == spoiled[0]:
                spoil(entry)

    events = driver._conn._client.meta.events
    events.register("provide-client-params.sqs.ChangeMessageVisibilityBatch", hook)


@pytest.mark.parametrize(
    "spoil",
    [
        # refused entry by entry (ReceiptHandleIsInvalid)
        lambda entry: entry.update(ReceiptHandle=entry["ReceiptHandle"] + "x"),
        # refused as a whole call by moto (past 12 h from the send)
        lambda entry: entry.update(VisibilityTimeout=43200),
    ],
    ids=["entry", "whole-call"],
)
async def test_a_message_whose_lease_was_not_set_is_not_handed_out_and_its_neighbour_is(
    driver: SQSDriver, queue: str, spoil: Any
) -> None:
    await driver.enqueue_many(
        [Outgoing(queue, b"%d" % i, visibility_timeout_seconds=60) for i in range(2)]
    )
    spoil_visibility_changes(driver, spoil)
    got = await driver.dequeue([queue], limit=2, wait_seconds=1)
    assert len(got) == 1
    assert got[0].visibility_timeout_seconds == 60
    assert (await driver.sizes(queue)).in_flight == 2
    await driver.ack(got)
    assert (await driver.sizes(queue)).in_flight == 1


async def test_debug_logs_of_boto_never_show_the_access_key_id(
    endpoint: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    # botocore.endpoint logs each request with its Authorization header at DEBUG
    caplog.set_level(logging.DEBUG)
    found = await opened(endpoint)
    try:
        await found.enqueue(Outgoing(queue, b"work"))
        await found.ack(await found.dequeue([queue], limit=1, wait_seconds=1))
    finally:
        await found.close()
    lines = [record.getMessage() for record in caplog.records]
    assert any("Authorization" in line for line in lines)
    assert [line for line in lines if KEY_ID in line or SECRET in line] == []


async def test_a_queue_name_too_long_for_its_side_queues_is_a_config_error_naming_it(
    driver: SQSDriver, endpoint: str
) -> None:
    # SQS names hold 80 characters; "<name>_completed" must fit as well as "<name>".
    name = "s-" + "x" * 70
    try:
        with pytest.raises(ConfigError, match=f"{name}.*80"):
            await driver.enqueue(Outgoing(name, b"work"))
        with pytest.raises(ConfigError, match=name):
            await driver.enqueue_many([Outgoing(name, b"work")])
        urls = client(endpoint).list_queues().get("QueueUrls", [])
        assert not any(name in url for url in urls)
    finally:
        delete_queues(endpoint, [name])
