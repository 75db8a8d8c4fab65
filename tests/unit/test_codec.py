"""The argument codec: every supported type round-trips with its type intact (C20, C22)."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import math
import os
import re
import sys
import threading
import typing
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import attrs
import msgpack
import msgpack.fallback
import pytest

from asynctasq import codec
from asynctasq.codec import wire
from asynctasq.errors import SerializationError

# ------------------------------------------------------------------ module-level test classes


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Mode(enum.StrEnum):
    FAST = "fast"


class Perm(enum.Flag):
    R = 1
    W = 2
    X = 4


Point = collections.namedtuple("Point", "x y")


class Span(typing.NamedTuple):
    start: dt.datetime
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Money:
    amount: decimal.Decimal
    currency: str = "EUR"


@dataclasses.dataclass(slots=True)
class Order:
    id: uuid.UUID
    lines: list[Money]
    meta: dict[Any, Any] = dataclasses.field(default_factory=dict)


@attrs.frozen
class Window:
    start: dt.datetime
    _length: dt.timedelta
    labels: frozenset[str] = attrs.field(factory=frozenset)


@attrs.define
class Mutable:
    value: Any
    derived: int = attrs.field(init=False, default=0)


@dataclasses.dataclass
class Holder:
    value: Any


POST_INIT_CALLS: list[object] = []


@dataclasses.dataclass
class Audited:
    x: int

    def __post_init__(self) -> None:
        POST_INIT_CALLS.append(self)


class AsyncpgLikeUUID(uuid.UUID):
    """Stands for asyncpg's UUID class, a subclass of uuid.UUID."""


class MyDatetime(dt.datetime):
    pass


class MyStr(str):
    pass


class NoOffsetTz(dt.tzinfo):
    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
        return None if when is None else dt.timedelta(hours=2)

    def dst(self, when: dt.datetime | None) -> dt.timedelta | None:
        return None

    def tzname(self, when: dt.datetime | None) -> str:
        return "NOOFF"


def _zone(key: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(key)
    except zoneinfo.ZoneInfoNotFoundError:  # pragma: no cover - depends on the machine
        pytest.skip(f"time zone {key} not installed")


HERE = __name__
KATHMANDU = zoneinfo.ZoneInfo("Asia/Kathmandu")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
MINUS_3 = dt.timezone(dt.timedelta(hours=-3))
ODD = dt.timezone(dt.timedelta(hours=1, seconds=7, microseconds=3))


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(params=["c", "python"], autouse=True)
def msgpack_build(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run every test with the installed msgpack build and with the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(wire, "Packer", msgpack.fallback.Packer)
        monkeypatch.setattr(wire, "unpackb", msgpack.fallback.unpackb)
    return str(request.param)


def roundtrip(value: object) -> Any:
    return codec.unpack(codec.pack(codec.lower(value, "value")))


def assert_identical(got: Any, want: Any) -> None:
    """Equal value, same type, at every depth; datetimes/times also same offset and fold."""
    assert type(got) is type(want), f"{got!r} is a {type(got)}, expected {type(want)}"
    if isinstance(want, list | tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_identical(g, w)
    elif isinstance(want, dict):
        assert len(got) == len(want)
        for (gk, gv), (wk, wv) in zip(got.items(), want.items(), strict=True):
            assert_identical(gk, wk)
            assert_identical(gv, wv)
    elif isinstance(want, set | frozenset):
        by_value = {item: item for item in got}
        assert len(got) == len(want)
        for item in want:
            assert_identical(by_value[item], item)
    else:
        assert_same_scalar(got, want)
    if dataclasses.is_dataclass(want) or attrs.has(type(want)):
        assert got == want


def assert_same_scalar(got: Any, want: Any) -> None:
    if isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    elif isinstance(want, decimal.Decimal) and want.is_nan():
        assert str(got) == str(want)
    else:
        assert got == want
    if isinstance(want, float):
        assert math.copysign(1, got) == math.copysign(1, want)
    if isinstance(want, decimal.Decimal):
        assert str(got) == str(want)
    if isinstance(want, dt.datetime | dt.time):
        assert type(got.tzinfo) is type(want.tzinfo)
        assert got.utcoffset() == want.utcoffset()
        assert got.tzname() == want.tzname()
        assert got.fold == want.fold


# ---------------------------------------------------------------------------- round trips

ROUND_TRIPS: list[tuple[str, object]] = [
    ("none", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("negative int", -17),
    ("int64 max", 2**63 - 1),
    ("uint64 max", 2**64 - 1),
    ("int64 min", -(2**63)),
    ("just over uint64", 2**64),
    ("just under int64", -(2**63) - 1),
    ("huge positive int", 2**521 - 1),
    ("huge negative int", -(10**100)),
    ("float", 0.1),
    ("negative zero", -0.0),
    ("nan", math.nan),
    ("inf", math.inf),
    ("minus inf", -math.inf),
    ("empty str", ""),
    ("unicode str", "héllo ✓ 🐍"),
    ("empty bytes", b""),
    ("bytes", b"\x00\xff\x10"),
    ("bytearray", bytearray(b"\x00abc")),
    ("empty bytearray", bytearray()),
    ("empty list", []),
    ("list", [1, "a", None]),
    ("empty tuple", ()),
    ("tuple", (1, "a", 2.5)),
    ("one-tuple", ("only",)),
    ("nested tuples", ((1, (2, (3,))), [4, (5,)])),
    ("dict", {"a": 1, "b": [2]}),
    ("dict with int keys", {1: "one", -2: "minus two", 2**70: "big"}),
    ("dict with tuple keys", {(1, 2): "pair", ("a",): "single", (): "empty"}),
    ("dict with mixed keys", {None: 0, b"k": 1, 1.5: 2, True: 3, frozenset({1}): 4}),
    ("set", {1, "a", (2, 3)}),
    ("empty set", set()),
    ("frozenset", frozenset({1, frozenset({2})})),
    ("naive datetime", dt.datetime(2024, 2, 29, 13, 14, 15)),
    ("naive datetime with micros", dt.datetime(2024, 2, 29, 13, 14, 15, 999_999)),
    ("utc datetime", dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)),
    ("fixed offset datetime", dt.datetime(2024, 1, 1, 12, tzinfo=MINUS_3)),
    ("named offset datetime", dt.datetime(2024, 1, 1, 12, tzinfo=IST)),
    ("sub-minute offset datetime", dt.datetime(2024, 1, 1, 12, tzinfo=ODD)),
    ("kathmandu datetime", dt.datetime(2024, 6, 1, 9, 30, 0, 123, tzinfo=KATHMANDU)),
    ("new york dst fold", dt.datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK, fold=1)),
    ("datetime min", dt.datetime.min),
    ("datetime max", dt.datetime.max),
    ("date", dt.date(2020, 2, 29)),
    ("date min", dt.date.min),
    ("naive time", dt.time(23, 59, 59, 999_999)),
    ("utc time", dt.time(8, 0, tzinfo=dt.UTC)),
    ("offset time", dt.time(8, 0, tzinfo=IST)),
    ("zoneinfo time", dt.time(8, 0, tzinfo=KATHMANDU)),
    ("time with fold", dt.time(1, 30, fold=1)),
    ("timedelta", dt.timedelta(days=3, seconds=5, microseconds=7)),
    ("negative timedelta", dt.timedelta(days=-1, microseconds=1)),
    ("timedelta max", dt.timedelta.max),
    ("timedelta min", dt.timedelta.min),
    ("decimal", decimal.Decimal("0.1")),
    ("decimal exponent", decimal.Decimal("1E+2")),
    ("decimal trailing zeros", decimal.Decimal("1.2300")),
    ("decimal negative zero", decimal.Decimal("-0")),
    (
        "decimal many digits",
        decimal.Decimal("3.14159265358979323846264338327950288419716939937510"),
    ),
    ("decimal nan", decimal.Decimal("NaN")),
    ("decimal infinity", decimal.Decimal("-Infinity")),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("enum", Color.GREEN),
    ("int enum", Level.HIGH),
    ("str enum", Mode.FAST),
    ("flag member", Perm.W),
    ("flag combination", Perm.R | Perm.X),
    ("namedtuple", Point(1, (2, 3))),
    ("typing namedtuple", Span(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), ("a",))),
    ("frozen dataclass", Money(decimal.Decimal("9.99"))),
    ("slots dataclass", Order(uuid.UUID(int=7), [Money(decimal.Decimal("1"), "USD")], {1: (2,)})),
    ("attrs frozen with private field", Window(dt.datetime(2024, 1, 1), dt.timedelta(hours=1))),
    ("attrs init=False field", Mutable([1, (2,)])),
]


@pytest.mark.parametrize(("value"), [v for _, v in ROUND_TRIPS], ids=[n for n, _ in ROUND_TRIPS])
def test_value_round_trips_with_type_and_value_intact(value: object) -> None:
    assert_identical(roundtrip(value), value)


def test_every_value_round_trips_nested_inside_dict_list_tuple() -> None:
    values = tuple(v for _, v in ROUND_TRIPS)
    nested = {"outer": [values, {"inner": (values, [values])}], 3: {(1, "k"): values}}
    assert_identical(roundtrip(nested), nested)


def test_both_msgpack_builds_write_the_same_bytes() -> None:
    value = {"all": [v for _, v in ROUND_TRIPS if not isinstance(v, set | frozenset)]}
    native = codec.lower(value, "value")
    c_bytes = msgpack.Packer(default=wire._bigint, strict_types=True).pack(native)
    py_bytes = msgpack.fallback.Packer(default=wire._bigint, strict_types=True).pack(native)
    assert c_bytes == py_bytes


def test_the_c_fixture_uses_the_c_extension_when_installed() -> None:
    if os.environ.get("MSGPACK_PUREPYTHON"):
        pytest.skip("MSGPACK_PUREPYTHON is set: msgpack runs its fallback")
    assert msgpack.Packer is not msgpack.fallback.Packer


def test_timezone_utc_comes_back_as_the_utc_singleton() -> None:
    assert roundtrip(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).tzinfo is dt.UTC


def test_zoneinfo_comes_back_as_the_same_zone_by_key() -> None:
    zone = _zone("Asia/Kathmandu")
    got = roundtrip(dt.datetime(2024, 6, 1, 9, 30, tzinfo=zone))
    assert got.tzinfo is zone
    assert got.utcoffset() == dt.timedelta(hours=5, minutes=45)


def test_zoneinfo_without_a_key_comes_back_as_its_fixed_offset(tmp_path: Path) -> None:
    source = Path("/usr/share/zoneinfo/Asia/Kathmandu")
    if not source.exists():
        pytest.skip("no system tz database file")
    with source.open("rb") as handle:
        keyless = zoneinfo.ZoneInfo.from_file(handle)
    got = roundtrip(dt.datetime(2024, 6, 1, 9, 30, tzinfo=keyless))
    assert got.tzinfo == dt.timezone(dt.timedelta(hours=5, minutes=45))
    assert got.utcoffset() == dt.timedelta(hours=5, minutes=45)


def test_a_foreign_tzinfo_comes_back_as_a_fixed_offset() -> None:
    class Plus2(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(hours=2)

        def dst(self, when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

        def tzname(self, when: dt.datetime | None) -> str:
            return "P2"

    value = dt.datetime(2024, 1, 1, 12, tzinfo=Plus2())
    got = roundtrip(value)
    assert got == value
    assert got.tzinfo == dt.timezone(dt.timedelta(hours=2))


C20_INPUTS: list[object] = [
    dt.datetime(2024, 3, 10, 8, 0),
    dt.datetime(2024, 3, 10, 8, 0, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 10, 8, 0, tzinfo=KATHMANDU),
    dt.datetime(2024, 3, 10, 8, 0, 0, 123_456),
    dt.date(2024, 3, 10),
    dt.time(8, 0, tzinfo=IST),
    dt.timedelta(days=-1, microseconds=1),
]


def test_c20_datetimes_keep_awareness_and_offset_at_any_depth() -> None:
    value = {"when": [tuple(C20_INPUTS), {"deeper": (C20_INPUTS,)}]}
    got = roundtrip(value)
    assert_identical(got, value)
    for item, original in zip(got["when"][0], C20_INPUTS, strict=True):
        if isinstance(original, dt.datetime | dt.time):
            assert (item.tzinfo is None) == (original.tzinfo is None)
            assert item.utcoffset() == original.utcoffset()


def test_c22_types_arrive_intact_nested_inside_each_other() -> None:
    value = (
        Point(1, 2),
        {1: decimal.Decimal("0.1"), 2: AsyncpgLikeUUID(int=5)},
        [b"raw", bytearray(b"buf"), {frozenset({1}), (1, 2)}],
        Color.RED,
        Holder((Money(decimal.Decimal("0.10")), [Level.LOW])),
    )
    got = roundtrip(value)
    expected = (
        value[0],
        {1: decimal.Decimal("0.1"), 2: uuid.UUID(int=5)},
        value[2],
        value[3],
        value[4],
    )
    assert_identical(got, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (AsyncpgLikeUUID(int=1), uuid.UUID(int=1)),
        (MyDatetime(2024, 1, 1, tzinfo=IST), dt.datetime(2024, 1, 1, tzinfo=IST)),
    ],
    ids=["uuid subclass", "datetime subclass"],
)
def test_subclasses_of_uuid_and_datetime_arrive_as_the_base_class(
    value: object, expected: object
) -> None:
    assert_identical(roundtrip(value), expected)


def test_lists_and_dicts_of_native_values_are_not_copied() -> None:
    items = [1, "a", None]
    mapping = {"a": 1, "b": b"x"}
    assert codec.lower(items, "value") is items
    assert codec.lower(mapping, "value") is mapping


def test_decoding_runs_no_init_or_post_init() -> None:
    value = Audited(3)
    POST_INIT_CALLS.clear()
    got = roundtrip(value)
    assert got == value
    assert POST_INIT_CALLS == []


# ----------------------------------------------------------------------- unsupported values


@pytest.mark.parametrize(
    ("value", "where", "message"),
    [
        (
            threading.Lock(),
            "args[1]",
            "cannot serialize args[1] (a _thread.lock): unsupported type",
        ),
        (lambda: None, "args[0]", "cannot serialize args[0] (a function): unsupported type"),
        ((i for i in ()), "args[0]", "cannot serialize args[0] (a generator): unsupported type"),
        (
            {"when": {"x": threading.Lock()}},
            "kwargs",
            "cannot serialize kwargs['when']['x'] (a _thread.lock)",
        ),
        ([1, (2, threading.Lock())], "args[0]", "cannot serialize args[0][1][1] (a _thread.lock)"),
        (Holder(object()), "args[0]", "cannot serialize args[0].value (a object)"),
        (
            {threading.Lock(): 1},
            "kwargs['d']",
            "cannot serialize kwargs['d'] key #0 (a _thread.lock)",
        ),
        (MyStr("x"), "args[0]", "subclasses of str are not supported; pass a plain str"),
        (collections.OrderedDict(a=1), "args[0]", "subclasses of dict are not supported"),
        (
            dt.time(1, tzinfo=NoOffsetTz()),
            "args[0]",
            "cannot serialize args[0] (a datetime.time): its tzinfo",
        ),
    ],
    ids=[
        "lock",
        "lambda",
        "generator",
        "nested in kwargs",
        "nested in list and tuple",
        "dataclass field",
        "dict key",
        "str subclass",
        "dict subclass",
        "time tz without offset",
    ],
)
def test_unsupported_value_names_its_path(value: object, where: str, message: str) -> None:
    with pytest.raises(SerializationError, match=_escaped(message)):
        codec.lower(value, where)


def test_a_class_defined_inside_a_function_fails_at_encode() -> None:
    class Local(enum.Enum):
        A = 1

    with pytest.raises(SerializationError, match="cannot be found by its import path"):
        codec.lower(Local.A, "args[0]")


def test_a_value_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="nested too deeply, or it contains itself"):
        codec.lower(loop, "args[0]")


def _escaped(text: str) -> str:
    return re.escape(text)


# ---------------------------------------------------------------------- decoding safely


def _crafted(code: int, payload: object) -> bytes:
    return codec.pack([wire.ext(code, payload)])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "cannot decode"),
        (b"\xc1", "cannot decode"),
        (b"\x91", "cannot decode"),
        (b"\x01\x02", "cannot decode"),
        (msgpack.packb(msgpack.ExtType(99, b"")), "unknown extension type 99"),
        (_crafted(wire.DATETIME, [2024, 1, 1, 0, 0, 0, 0, 0, "No/Such_Zone"]), "No/Such_Zone"),
        (_crafted(wire.DATETIME, [2024, 13, 1, 0, 0, 0, 0, 0, None]), "month must be in"),
        (_crafted(wire.DECIMAL, "1.2.3"), "cannot decode"),
        (_crafted(wire.ENUM, [f"{HERE}:Color", "PURPLE"]), "has no member 'PURPLE'"),
        (_crafted(wire.ENUM, ["collections:OrderedDict", "x"]), "is not an Enum class"),
        (_crafted(wire.DATACLASS, ["os:system", {}]), "is not a dataclass class"),
        (_crafted(wire.ATTRS, [f"{HERE}:Money", {}]), "is not an attrs class"),
        (_crafted(wire.DATACLASS, [f"{HERE}:Money", {"nope": 1}]), "has no field 'nope'"),
        (_crafted(wire.NAMEDTUPLE, [f"{HERE}:Point", [1]]), "has 2 fields"),
    ],
    ids=[
        "empty",
        "reserved byte",
        "truncated array",
        "trailing bytes",
        "unknown extension",
        "unknown zone",
        "bad datetime",
        "bad decimal",
        "unknown member",
        "not an enum",
        "a function as a dataclass",
        "a dataclass as attrs",
        "unknown field",
        "namedtuple arity",
    ],
)
def test_bad_data_is_a_serialization_error(body: bytes, message: str) -> None:
    with pytest.raises(SerializationError, match=_escaped(message)):
        codec.unpack(body)


@pytest.mark.parametrize("code", [wire.ENUM, wire.DATACLASS, wire.ATTRS, wire.NAMEDTUPLE])
def test_a_class_from_a_module_not_imported_is_an_error_not_an_import(code: int) -> None:
    assert "this" not in sys.modules  # the Zen of Python prints itself when imported
    payload = ["this:Anything", "X"] if code == wire.ENUM else ["this:Anything", {}]
    with pytest.raises(SerializationError, match="module 'this' is not imported in this process"):
        codec.unpack(_crafted(code, payload))
    assert "this" not in sys.modules


def test_a_class_whose_module_was_unloaded_is_not_imported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "codec_probe_module.py").write_text(
        "import enum, dataclasses\n"
        "class Shade(enum.Enum):\n    DARK = 1\n"
        "@dataclasses.dataclass\nclass Box:\n    size: int\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import codec_probe_module  # type: ignore[import-not-found]

    bodies = [
        codec.pack(codec.lower(codec_probe_module.Shade.DARK, "v")),
        codec.pack(codec.lower(codec_probe_module.Box(3), "v")),
    ]
    monkeypatch.delitem(sys.modules, "codec_probe_module")
    for body in bodies:
        with pytest.raises(SerializationError, match="'codec_probe_module' is not imported"):
            codec.unpack(body)
    assert "codec_probe_module" not in sys.modules


def test_a_record_missing_a_field_takes_the_declared_default() -> None:
    body = _crafted(wire.DATACLASS, [f"{HERE}:Money", {"amount": 5}])
    assert codec.unpack(body) == [Money(5)]  # type: ignore[arg-type]
