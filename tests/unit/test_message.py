"""The task message: a versioned msgpack array; arguments travel exactly; bad bodies refused."""

from __future__ import annotations

import datetime as dt
import decimal
import random
import re
import threading
import uuid
import zoneinfo
from typing import Any

import attrs
import msgpack
import msgpack.fallback
import pytest

from asynctasq import codec
from asynctasq.codec import wire
from asynctasq.errors import SerializationError
from asynctasq.message import FORMAT_VERSION, MODES, TaskMessage, decode, encode


@pytest.fixture(params=["c", "python"], autouse=True)
def msgpack_build(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test with the installed msgpack build and with the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(wire, "Packer", msgpack.fallback.Packer)
        monkeypatch.setattr(wire, "unpackb", msgpack.fallback.unpackb)
    return str(request.param)


def make(*args: Any, **changes: Any) -> TaskMessage:
    kwargs = changes.pop("kwargs", {})
    message = TaskMessage(
        task_id=uuid.UUID(int=1).hex,
        task_name="app.tasks:send_email",
        args=args,
        kwargs=kwargs,
        queue="default",
        attempt=1,
        max_attempts=3,
        retry_strategy="exponential",
        retry_delay_seconds=1.5,
        timeout_seconds=None,
        visibility_timeout_seconds=3600.0,
        correlation_id=None,
        dispatched_at=1_700_000_000.25,
    )
    return attrs.evolve(message, **changes)


def test_a_message_round_trips_to_an_equal_message() -> None:
    message = make(
        42,
        "to@example.com",
        kwargs={"when": dt.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))},
        timeout_seconds=30.0,
        correlation_id="req-7",
        mode="sync",
        attempt=3,
        max_attempts=5,
    )
    assert decode(encode(message)) == message


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_round_trips(mode: str) -> None:
    assert decode(encode(make(mode=mode))).mode == mode


def test_the_encoded_form_is_a_compact_array_with_the_version_first() -> None:
    body = encode(make(1, kwargs={"a": 2}))
    raw = msgpack.unpackb(body, strict_map_key=False)
    assert raw[0] == FORMAT_VERSION == 1
    assert raw[1:] == [
        uuid.UUID(int=1).hex,
        "app.tasks:send_email",
        [1],
        {"a": 2},
        "default",
        1,
        3,
        "exponential",
        1.5,
        None,
        3600.0,
        None,
        1_700_000_000.25,
        "async",
    ]


def test_args_stay_a_tuple_and_a_tuple_argument_stays_a_tuple() -> None:
    got = decode(encode(make((1, 2), [3, (4,)])))
    assert got.args == ((1, 2), [3, (4,)])
    assert type(got.args) is tuple
    assert type(got.args[0]) is tuple
    assert type(got.args[1]) is list


def test_c22_argument_types_arrive_intact_through_a_message() -> None:
    args = (
        (1, 2),
        {3: "int key"},
        {1, 2},
        frozenset({3}),
        b"raw",
        bytearray(b"buf"),
        decimal.Decimal("0.1"),
        uuid.UUID(int=9),
        2**80,
    )
    got = decode(encode(make(*args)))
    assert got.args == args
    assert [type(a) for a in got.args] == [type(a) for a in args]


def test_c20_aware_and_naive_datetimes_keep_their_offsets_in_kwargs() -> None:
    kathmandu = zoneinfo.ZoneInfo("Asia/Kathmandu")
    when = {
        "naive": dt.datetime(2024, 5, 5, 5, 5),
        "utc": dt.datetime(2024, 5, 5, 5, 5, tzinfo=dt.UTC),
        "kathmandu": dt.datetime(2024, 5, 5, 5, 5, tzinfo=kathmandu),
        "nested": [({"t": dt.time(5, 5, tzinfo=kathmandu)},)],
    }
    got = decode(encode(make(kwargs={"when": when}))).kwargs["when"]
    assert got == when
    assert got["naive"].tzinfo is None
    assert got["utc"].tzinfo is dt.UTC
    assert got["kathmandu"].utcoffset() == dt.timedelta(hours=5, minutes=45)
    assert got["nested"][0][0]["t"].tzinfo is kathmandu


def test_int_numbers_in_float_fields_come_back_as_floats() -> None:
    got = decode(encode(make(retry_delay_seconds=2, timeout_seconds=5, dispatched_at=7)))
    assert (got.retry_delay_seconds, got.timeout_seconds, got.dispatched_at) == (2.0, 5.0, 7.0)
    assert type(got.retry_delay_seconds) is float
    assert type(got.timeout_seconds) is float


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (make(1, threading.Lock()), "cannot serialize args[1] (a _thread.lock)"),
        (make(kwargs={"when": {"x": threading.Lock()}}), "kwargs['when']['x'] (a _thread.lock)"),
        (make([0, lambda: 1]), "cannot serialize args[0][1] (a function)"),
        (make(i for i in ()), "cannot serialize args[0] (a generator)"),
        (make(kwargs={1: "x"}), "kwargs has a key that is not a str"),
        (make(attempt=0), "attempt = 0 is below 1"),
        (make(max_attempts=0), "max_attempts = 0 is below 1"),
        (make(retry_strategy="linear"), "retry_strategy = 'linear' is not one of"),
        (make(retry_delay_seconds=-1.0), "retry_delay_seconds = -1.0 is not a finite number"),
        (make(retry_delay_seconds=float("nan")), "retry_delay_seconds = nan"),
        (make(timeout_seconds=0.0), "timeout_seconds = 0.0 is not None or > 0"),
        (make(visibility_timeout_seconds=0.0), "visibility_timeout_seconds = 0.0 is not > 0"),
        (make(mode="thread"), "mode = 'thread' is not one of"),
        (make(task_id=7), "task message field task_id = 7 is not str"),
        (make(attempt=True), "task message field attempt = True is not int"),
    ],
    ids=[
        "lock in args",
        "lock deep in kwargs",
        "lambda in a list",
        "generator",
        "non-str kwarg key",
        "attempt 0",
        "max_attempts 0",
        "unknown strategy",
        "negative delay",
        "nan delay",
        "zero timeout",
        "zero visibility timeout",
        "unknown mode",
        "task_id not a str",
        "bool attempt",
    ],
)
def test_encode_refuses_at_dispatch_naming_what_is_wrong(message: TaskMessage, error: str) -> None:
    with pytest.raises(SerializationError, match=_escaped(error)):
        encode(message)


def _escaped(text: str) -> str:
    return re.escape(text)


def _raw(fields: list[Any]) -> bytes:
    return codec.pack(fields)


def _valid_fields() -> list[Any]:
    return list(msgpack.unpackb(encode(make(1)), strict_map_key=False))


def _with(index: int, value: Any) -> bytes:
    fields = _valid_fields()
    fields[index] = value
    return _raw(fields)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "cannot decode"),
        (b"\xc1", "cannot decode"),
        (b'{"task": "json"}', "cannot decode"),
        (_raw({"a": 1}), "not an asynctasq task message (a msgpack dict)"),  # type: ignore[arg-type]
        (_raw([]), "not an asynctasq task message (a msgpack list)"),
        (_with(0, 2), "task message format version 2 is not supported"),
        (_with(0, "1"), "task message format version '1' is not supported"),
        (_with(0, True), "task message format version True is not supported"),
        (_raw([1, "id", "name"]), "task message has 3 fields, expected 15"),
        (_raw([*_valid_fields(), "extra"]), "task message has 16 fields, expected 15"),
        (_with(3, {"not": "a list"}), "task message field args = {'not': 'a list'} is not list"),
        (_with(6, "1"), "task message field attempt = '1' is not int"),
        (_with(8, "linear"), "retry_strategy = 'linear' is not one of"),
        (_with(10, "soon"), "timeout_seconds = 'soon' is not None or int or float"),
        (_with(4, {1: 2}), "kwargs has a key that is not a str"),
        (encode(make(1))[:-1], "cannot decode"),
        (encode(make(1)) + b"\x00", "cannot decode"),
    ],
    ids=[
        "empty",
        "reserved byte",
        "json",
        "a map",
        "an empty array",
        "future version",
        "version as str",
        "version as bool",
        "too few fields",
        "too many fields",
        "args not a list",
        "attempt as str",
        "unknown strategy",
        "timeout as str",
        "non-str kwarg key",
        "truncated",
        "trailing byte",
    ],
)
def test_decode_refuses_a_bad_body_with_a_clear_reason(body: bytes, error: str) -> None:
    with pytest.raises(SerializationError, match=_escaped(error)):
        decode(body)


def test_any_corruption_of_a_valid_body_decodes_or_raises_serialization_error_only() -> None:
    body = encode(
        make(
            (1, "a"),
            {2: [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), decimal.Decimal("1.5")]},
            uuid.UUID(int=3),
            kwargs={"s": {1, 2}, "b": bytearray(b"x"), "big": -(2**90)},
        )
    )
    rng = random.Random(20240501)
    outcomes = {
        _outcome(body[:position] + bytes([value]) + body[position + 1 :])
        for position in range(len(body))
        for value in {0x00, 0xFF, 0xC1, body[position] ^ 0x01, rng.randrange(256)}
    }
    assert outcomes == {"TaskMessage", "SerializationError"}


def test_random_bytes_never_raise_anything_but_serialization_error() -> None:
    rng = random.Random(7)
    outcomes = {_outcome(rng.randbytes(rng.randrange(1, 64))) for _ in range(2000)}
    assert outcomes == {"SerializationError"}


def _outcome(body: bytes) -> str:
    try:
        return type(decode(body)).__name__
    except SerializationError:
        return "SerializationError"
