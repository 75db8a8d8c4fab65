"""The stored dead-letter entry shared by the Redis and RabbitMQ drivers."""

from __future__ import annotations

import msgpack
import pytest

from asynctasq.drivers.dead_entry_format import pack_dead_entry, unpack_dead_entry
from asynctasq.drivers.protocol import DeadLetterEntry


def test_a_dead_letter_entry_round_trips_with_its_lease() -> None:
    entry = DeadLetterEntry("q", b"\x00body", "id", "m:f", "KeyError", "'k'", 3, 1.5)
    assert unpack_dead_entry(pack_dead_entry(entry, 900)) == (entry, 900)


@pytest.mark.parametrize(
    "blob",
    [b"", b"\xc1", msgpack.packb({"queue": "q"}), msgpack.packb([1]), msgpack.packb({"vt_ms": 5})],
)
def test_a_foreign_dead_letter_is_a_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="not a dead-letter entry"):
        unpack_dead_entry(blob)
