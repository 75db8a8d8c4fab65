"""The SQS wire format: delays and hops (C11), leases, sizes, dead letters. No network."""

from __future__ import annotations

import base64
import time

import pytest

from asynctasq.config.records import Config, SQSConfig
from asynctasq.drivers import build_driver
from asynctasq.drivers import sqs_format as wire
from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing
from asynctasq.drivers.sqs import SQSDriver
from asynctasq.errors import ConfigError, MessageTooLargeError

pytestmark = pytest.mark.anyio

PREFIX = "https://sqs.us-east-1.amazonaws.com/123456789012/"


def received(send: wire.Send, *, sent_ms: int, first_receive_ms: int, count: int = 1) -> dict:
    """A ReceiveMessage entry as SQS returns it for ``send``."""
    return {
        "Body": send.body,
        "ReceiptHandle": "rh",
        "Attributes": {
            "SentTimestamp": str(sent_ms),
            "ApproximateFirstReceiveTimestamp": str(first_receive_ms),
            "ApproximateReceiveCount": str(count),
        },
        "MessageAttributes": {k: dict(v) for k, v in send.attributes.items()},
    }


@pytest.mark.parametrize(
    ("seconds", "whole"), [(0, 0), (0.05, 1), (1.0, 1), (1.0000000001, 1), (1.2, 2), (900, 900)]
)
def test_delays_are_rounded_up_to_whole_seconds(seconds: float, whole: int) -> None:
    assert wire.whole_seconds(seconds) == whole


@pytest.mark.parametrize(("seconds", "lease"), [(0.2, 1), (1.5, 2), (3600, 3600), (10**6, 43200)])
def test_leases_are_whole_seconds_within_the_sqs_range(seconds: float, lease: int) -> None:
    assert wire.lease_seconds(seconds) == lease


def test_a_short_delay_is_native_and_carries_the_visibility_timeout() -> None:
    send = wire.outgoing(Outgoing("q", b"\x00\xff", delay_seconds=12.5), 900, 1000.0)
    assert send.delay == 13
    assert base64.b64decode(send.body) == b"\x00\xff"
    assert dict(send.attributes) == {wire.VT: {"DataType": "Number", "StringValue": "3600"}}
    assert send.params()["DelaySeconds"] == 13


def test_a_delay_of_an_hour_is_accepted_and_persists_its_due_time() -> None:
    # C11.1: dispatch(delay=3600) succeeds and persists now + 3600; DelaySeconds stays <= 900.
    now = time.time()
    send = wire.outgoing(Outgoing("q", b"x", delay_seconds=3600), 900, now)
    assert send.delay == 900
    assert float(send.attributes[wire.DUE]["StringValue"]) == pytest.approx(now + 3600, abs=0.01)
    assert float(send.attributes[wire.REST]["StringValue"]) == 2700
    assert float(send.attributes[wire.HOP]["StringValue"]) == 900


@pytest.mark.parametrize("attempt", range(1, 7))
def test_every_hop_of_a_growing_backoff_stays_within_900_seconds(attempt: int) -> None:
    # C11.3: exponential backoff base 200 s; every hop is a legal DelaySeconds, the total kept.
    delay = 200.0 * 2 ** (attempt - 1)
    send = wire.outgoing(Outgoing("q", b"x", delay_seconds=delay), 900, 0.0)
    waited = 0.0
    sent_ms = 0
    while True:
        assert 0 <= send.delay <= 900
        waited += send.delay
        message = received(send, sent_ms=sent_ms, first_receive_ms=sent_ms + send.delay * 1000)
        rest = wire.rest_seconds(message)
        if rest <= 0:
            break
        sent_ms += send.delay * 1000
        send = wire.next_hop(message, rest, 900)
    assert delay <= waited < delay + 1


def test_a_late_receive_is_taken_off_the_rest_by_the_servers_clock() -> None:
    send = wire.outgoing(Outgoing("q", b"x", delay_seconds=12), 5, 0.0)
    assert send.delay == 5
    on_time = received(send, sent_ms=1_000_000, first_receive_ms=1_005_000)
    late = received(send, sent_ms=1_000_000, first_receive_ms=1_006_500)
    assert wire.rest_seconds(on_time) == 7
    assert wire.rest_seconds(late) == 5.5
    assert wire.next_hop(late, 5.5, 5).delay == 5
    unknown = received(send, sent_ms=1_000_000, first_receive_ms=0)
    assert wire.rest_seconds(unknown) == 7  # no server time: never shortened


def test_the_last_hop_is_rounded_up_so_it_never_ends_early() -> None:
    send = wire.outgoing(Outgoing("q", b"x", delay_seconds=7.3), 5, 0.0)
    message = received(send, sent_ms=0, first_receive_ms=5000)
    last = wire.next_hop(message, wire.rest_seconds(message), 5)
    assert last.delay == 3
    assert wire.REST not in last.attributes
    assert wire.VT in last.attributes


def test_the_delivery_count_adds_the_base_of_a_released_copy() -> None:
    send = wire.outgoing(Outgoing("q", b"x"), 900, 0.0, base=2)
    assert wire.delivery_count(received(send, sent_ms=0, first_receive_ms=0, count=1)) == 3
    fresh = wire.outgoing(Outgoing("q", b"x"), 900, 0.0)
    assert wire.delivery_count(received(fresh, sent_ms=0, first_receive_ms=0, count=2)) == 2


def test_a_foreign_body_is_handed_on_as_text_bytes() -> None:
    assert wire.decode_body("not base64 at all!") == b"not base64 at all!"
    assert wire.decode_body(base64.b64encode(b"\x01\x02").decode()) == b"\x01\x02"


def test_the_size_counts_body_and_attributes() -> None:
    send = wire.Send("abcd", 0, {"n": {"DataType": "Number", "StringValue": "12"}})
    assert send.size == 4 + 1 + 6 + 2


def test_the_largest_body_fits_the_256_kib_limit_with_every_attribute() -> None:
    biggest = wire.max_body_bytes()
    assert biggest == 196_224
    message = Outgoing("q", b"x" * biggest, delay_seconds=10**6, visibility_timeout_seconds=43200)
    send = wire.outgoing(message, 900, time.time(), base=99)
    assert send.size <= wire.MESSAGE_LIMIT_BYTES


def test_batches_hold_at_most_ten_entries_and_256_kib() -> None:
    small = [wire.Send("x") for _ in range(23)]
    assert [len(b) for b in wire.batches(small)] == [10, 10, 3]
    big = [wire.Send("x" * 100_000) for _ in range(5)]
    assert [len(b) for b in wire.batches(big)] == [2, 2, 1]


def entry(message: str = "boom") -> DeadLetterEntry:
    return DeadLetterEntry("q", b"\x00body", "t1", "m:f", "ValueError", message, 3, 1.25)


def test_a_dead_letter_keeps_every_field_and_its_lease() -> None:
    kept, vt = wire.parse_dead(wire.dead_body(entry(), 60, wire.MESSAGE_LIMIT_BYTES))
    assert (kept, vt) == (entry(), 60)


def test_an_over_long_error_message_is_shortened_to_fit() -> None:
    text = wire.dead_body(entry("e" * 300_000), 60, wire.MESSAGE_LIMIT_BYTES)
    assert len(text.encode()) <= wire.MESSAGE_LIMIT_BYTES
    kept, _ = wire.parse_dead(text)
    assert kept.error_message.endswith(" [truncated]")
    assert kept.body == b"\x00body"


def test_garbage_in_a_dead_letter_queue_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not an asynctasq dead letter"):
        wire.parse_dead("{}")


def config(**extra: object) -> Config:
    settings = {"region_name": "us-east-1", "queue_url_prefix": PREFIX, **extra}
    return Config(driver="sqs", sqs=SQSConfig(**settings))


def test_build_driver_makes_an_unopened_sqs_driver() -> None:
    driver = build_driver(config())
    assert isinstance(driver, SQSDriver)
    assert (driver.name, driver.maintenance_interval_seconds) == ("sqs", None)
    assert driver.max_message_bytes == wire.max_body_bytes()


def test_the_sqs_driver_needs_a_region_and_a_prefix() -> None:
    with pytest.raises(ConfigError, match=r"(?s)sqs\.region_name.*sqs\.queue_url_prefix"):
        build_driver(Config(driver="sqs"))


async def test_an_oversized_message_is_refused_at_dispatch_naming_the_limit() -> None:
    driver = SQSDriver(config().sqs)  # never opened: the check comes before any call
    body = b"x" * (wire.max_body_bytes() + 10_000)
    with pytest.raises(MessageTooLargeError, match=r"262144 bytes per message \(256 KiB\)"):
        await driver.enqueue(Outgoing("q", body))
    with pytest.raises(MessageTooLargeError, match="'q'"):
        await driver.enqueue_many([Outgoing("q", b"ok"), Outgoing("q", body)])
