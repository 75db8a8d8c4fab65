"""The RabbitMQ driver without a broker: its settings, names, headers and refusals."""

from __future__ import annotations

import os
import time
from pathlib import Path

import aio_pika
import msgpack
import pytest
from aio_pika.abc import AbstractIncomingMessage

from asynctasq.config.records import Config, RabbitMQConfig
from asynctasq.drivers import build_driver
from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers.dead_entry_format import unpack_dead_entry
from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing
from asynctasq.drivers.rabbitmq import DEFAULT_MAX_MESSAGE_BYTES, RabbitMQDriver
from asynctasq.drivers.rabbitmq_link import Link, server_version
from asynctasq.errors import MessageTooLargeError

pytestmark = pytest.mark.anyio

NOWHERE = "amqp://guest:guest@127.0.0.1:1/"


def received(message: aio_pika.Message) -> AbstractIncomingMessage:
    """Return ``message`` as a consumer would see it (only body and headers are read)."""
    return message  # type: ignore[return-value]  # the same attributes, as far as we read


def test_the_driver_reads_every_setting_of_its_group() -> None:
    settings = RabbitMQConfig(exchange_name="jobs", prefetch_count=7, delayed_task_interval=0.25)
    driver = build_driver(Config(driver="rabbitmq", rabbitmq=settings))
    assert isinstance(driver, RabbitMQDriver)
    assert driver.maintenance_interval_seconds == 0.25
    assert driver.prefetch_count == 7
    assert driver.max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES
    assert driver._link.config.exchange_name == "jobs"


async def test_the_default_limit_is_16_711_680_bytes_as_the_docs_say() -> None:
    # F8: the docs said "larger than 16 MiB"; the driver keeps 64 KiB for headers.
    assert DEFAULT_MAX_MESSAGE_BYTES == 16_711_680
    docs = (Path(__file__).parents[3] / "docs" / "rabbitmq.md").read_text(encoding="utf-8")
    assert "larger than 16,711,680 bytes" in " ".join(docs.split())
    driver = RabbitMQDriver(RabbitMQConfig(url=NOWHERE))
    with pytest.raises(MessageTooLargeError, match=r"16711681 bytes.*at most 16711680 bytes"):
        await driver.enqueue(Outgoing("q", b"x" * 16_711_681))


def test_each_driver_names_its_connection_uniquely_with_its_pid() -> None:
    names = {RabbitMQDriver(RabbitMQConfig()).connection_name for _ in range(3)}
    assert len(names) == 3
    assert all(f" pid {os.getpid()} " in name for name in names)


async def test_a_body_over_the_limit_is_refused_before_any_network_call() -> None:
    driver = RabbitMQDriver(RabbitMQConfig(url=NOWHERE), max_message_bytes=10)
    with pytest.raises(MessageTooLargeError, match=r"11 bytes.*at most 10 bytes"):
        await driver.enqueue(Outgoing("q", b"x" * 11))
    with pytest.raises(MessageTooLargeError):
        await driver.enqueue_many([Outgoing("q", b"ok"), Outgoing("q", b"x" * 11)])


def test_a_ready_message_is_persistent_with_count_lease_and_task_id() -> None:
    key, message = form.outgoing(
        Outgoing("q", b"body", visibility_timeout_seconds=1.5, task_id="t"), "id1", 0
    )
    assert key == "q"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert (message.message_id, message.priority, message.body) == ("id1", 0, b"body")
    assert message.headers == {form.COUNT: 0, form.VT_MS: 1500, form.TASK_ID: "t"}


def test_a_delayed_message_goes_to_the_delayed_queue_due_at_now_plus_the_delay_rounded_up() -> None:
    key, message = form.outgoing(Outgoing("q", b"b", delay_seconds=2.0001), "id", 1_000)
    assert key == "q_delayed"
    assert message.headers[form.DUE_MS] == 1_000 + 2_001


def test_a_copy_keeps_body_lease_and_task_id_with_a_new_count_and_priority() -> None:
    stored = form.stored(b"b", message_id="a", vt_ms=900, count=2, task_id="t", due_ms=5)
    copy = form.copy_of(received(stored), "b", count=3, priority=form.FRONT)
    assert (copy.body, copy.message_id, copy.priority) == (b"b", "b", form.FRONT)
    assert copy.headers == {form.COUNT: 3, form.VT_MS: 900, form.TASK_ID: "t"}


def test_odd_or_missing_headers_read_as_the_default() -> None:
    plain = received(aio_pika.Message(b"x", headers={form.COUNT: "3", form.VT_MS: True}))
    assert form.header_int(plain, form.COUNT) == 0
    assert form.header_int(plain, form.VT_MS, 7) == 7
    assert form.header_int(received(aio_pika.Message(b"x")), form.DUE_MS, 0) == 0


def test_a_dead_letter_packs_the_whole_entry_and_summarises_it_in_headers() -> None:
    entry = DeadLetterEntry("q", b"\x00body", "t1", "m:f", "KeyError", "e" * 5000, 3, time.time())
    message = form.dead_letter(entry, 1500, "id")
    assert unpack_dead_entry(message.body) == (entry, 1500)
    assert message.headers[form.ERROR] == "e" * form.MAX_ERROR_HEADER_CHARS
    assert (message.headers[form.ERROR_TYPE], message.headers[form.ATTEMPTS]) == ("KeyError", 3)
    with pytest.raises(ValueError, match="not a dead-letter entry"):
        unpack_dead_entry(msgpack.packb({"queue": "q"}))


def test_names_and_milliseconds() -> None:
    assert (form.delayed_name("a"), form.dead_name("a")) == ("a_delayed", "a_dead")
    assert (form.to_ms(0.0001), form.to_ms(1.0)) == (1, 1000)
    ids = form.MessageIds()
    assert len({ids.next() for _ in range(1000)}) == 1000


def test_the_server_version_is_read_from_its_properties() -> None:
    assert server_version({"version": b"3.10.8"}) == (3, 10)
    assert server_version({"version": "4.1.0"}) == (4, 1)
    assert server_version({}) == ()
    assert server_version(None) == ()


def test_errors_never_carry_the_password() -> None:
    link = Link(
        RabbitMQConfig(url="amqp://app:s3cr3t@mq:5672/"),
        connection_name="n",
        reconnect_seconds=1,
        operation_timeout_seconds=1,
    )
    error = link.error("enqueue", ConnectionError("cannot reach amqp://app:s3cr3t@mq:5672/"))
    assert "s3cr3t" not in str(error)
    assert str(error).startswith("rabbitmq enqueue failed: ConnectionError: cannot reach")
