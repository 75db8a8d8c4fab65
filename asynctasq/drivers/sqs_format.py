"""What the SQS driver puts on the wire: bodies, message attributes, limits and hop arithmetic.

Pure functions and records, no I/O (unit-tested without a server).

* Body: SQS bodies are text, task messages are bytes, so a body is sent base64-encoded.
* Message attributes (``Number`` strings): ``asynctasq-vt`` the task's visibility timeout
  (seconds), so a receiver applies it without decoding the body; ``asynctasq-base`` the
  deliveries counted before this copy existed (a released message is re-sent as a copy);
  for delays over the hop limit ``asynctasq-due`` (target epoch seconds, dispatcher clock,
  for inspection), ``asynctasq-hop`` (this copy's ``DelaySeconds``) and ``asynctasq-rest``
  (seconds still to wait after this hop).
* A dead letter is one JSON body on ``<queue>_dead`` holding every field of the entry.

Source: SQS API reference: "SendMessage" (``DelaySeconds`` 0-900, body characters, 256 KiB
including attributes), "ChangeMessageVisibility" (0-43200 s), "ReceiveMessage" (at most 10
messages, ``WaitTimeSeconds`` 0-20), "SendMessageBatch" (10 entries, 256 KiB in total).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

from asynctasq.drivers.protocol import DeadLetterEntry, Outgoing

MAX_DELAY_SECONDS = 900
"""Longest native ``DelaySeconds``. Source: SQS "SendMessage"."""

MAX_VISIBILITY_SECONDS = 43200
"""Longest visibility timeout (12 hours). Source: SQS "ChangeMessageVisibility"."""

MAX_WAIT_SECONDS = 20
"""Longest long-poll ``WaitTimeSeconds``. Source: SQS "ReceiveMessage"."""

MAX_BATCH = 10
"""Most entries per receive and per ``*Batch`` call. Source: SQS "ReceiveMessage"."""

MESSAGE_LIMIT_BYTES = 256 * 1024
"""Largest message SQS accepts, body and attributes together (262,144 bytes).

Source: SPEC §4 ("SQS 256 KiB"); SQS "SendMessage" (queues created since 2025 may accept
1 MiB; the driver keeps the limit every queue accepts)."""

ATTRIBUTE_ALLOWANCE = 512
"""Bytes kept for this module's message attributes when computing the largest body."""

DEFAULT_VISIBILITY_SECONDS = 3600
"""Lease of a message without ``asynctasq-vt`` (sent by another producer)."""

VT = "asynctasq-vt"
BASE = "asynctasq-base"
DUE = "asynctasq-due"
HOP = "asynctasq-hop"
REST = "asynctasq-rest"

SYSTEM_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp")
"""System attributes every receive asks for."""


def max_body_bytes(limit_bytes: int = MESSAGE_LIMIT_BYTES) -> int:
    """Return the largest task body (raw bytes) that always fits in ``limit_bytes``.

    Base64 turns 3 bytes into 4 characters; :data:`ATTRIBUTE_ALLOWANCE` is kept for the
    attributes. ``max_body_bytes()`` is 196,224.
    """
    return (limit_bytes - ATTRIBUTE_ALLOWANCE) // 4 * 3


def whole_seconds(seconds: float) -> int:
    """Round a delay up to whole seconds (SQS has no finer unit), so it never fires early."""
    return max(0, math.ceil(seconds - 1e-9))


def lease_seconds(seconds: float) -> int:
    """Return the visibility timeout SQS can hold: ``seconds`` rounded up, within 1..43200."""
    return min(MAX_VISIBILITY_SECONDS, max(1, whole_seconds(seconds)))


def _number(value: float | int) -> dict[str, str]:
    text = str(value) if isinstance(value, int) else repr(float(value))
    return {"DataType": "Number", "StringValue": text}


@attrs.frozen
class Send:
    """One message to send: text body, whole-second delay and message attributes.

    Attributes:
        body: the SQS body (base64 of the task body, or a dead letter's JSON).
        delay: ``DelaySeconds``, 0..900.
        attributes: ``MessageAttributes`` as the API takes them.

    """

    body: str
    delay: int = 0
    attributes: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)

    @property
    def size(self) -> int:
        """Bytes SQS counts against its limit: body plus each attribute's name, type, value."""
        total = len(self.body.encode())
        for name, value in self.attributes.items():
            total += len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
        return total

    def params(self) -> dict[str, Any]:
        """Return the ``SendMessage`` keyword arguments (without ``QueueUrl``)."""
        found: dict[str, Any] = {"MessageBody": self.body}
        if self.delay:
            found["DelaySeconds"] = self.delay
        if self.attributes:
            found["MessageAttributes"] = {k: dict(v) for k, v in self.attributes.items()}
        return found

    def entry(self, entry_id: str) -> dict[str, Any]:
        """Return a ``SendMessageBatch`` entry with ``Id`` ``entry_id``."""
        return {"Id": entry_id, **self.params()}


def deferred(
    body: str,
    attributes: Mapping[str, Mapping[str, str]],
    delay_seconds: float,
    hop_seconds: int,
) -> Send:
    """Return ``body`` sent with ``delay_seconds``: natively, or as the first of several hops.

    A delay up to ``hop_seconds`` becomes ``DelaySeconds`` (rounded up). A longer one is sent
    with ``DelaySeconds=hop_seconds`` and ``asynctasq-rest`` = what is left; the receiver
    re-sends it (:func:`next_hop`) until nothing is left.
    """
    delay = whole_seconds(delay_seconds)
    kept = {k: v for k, v in attributes.items() if k not in (HOP, REST)}
    if delay <= hop_seconds:
        return Send(body, delay, kept)
    kept[HOP] = _number(hop_seconds)
    kept[REST] = _number(delay_seconds - hop_seconds)
    return Send(body, hop_seconds, kept)


def outgoing(message: Outgoing, hop_seconds: int, now: float, base: int = 0) -> Send:
    """Return the :class:`Send` for a task message.

    Args:
        message: the message; its ``delay_seconds`` may exceed 900.
        hop_seconds: the longest native delay per hop (1..900).
        now: the current epoch time, for the informative ``asynctasq-due``.
        base: deliveries already counted for this body (a released copy), else 0.

    """
    attributes: dict[str, Mapping[str, str]] = {
        VT: _number(lease_seconds(message.visibility_timeout_seconds))
    }
    if base:
        attributes[BASE] = _number(base)
    if message.delay_seconds > hop_seconds:
        attributes[DUE] = _number(now + message.delay_seconds)
    body = base64.b64encode(message.body).decode("ascii")
    return deferred(body, attributes, message.delay_seconds, hop_seconds)


def attribute(message: Mapping[str, Any], name: str, default: float) -> float:
    """Return the number in message attribute ``name`` of a received message, or ``default``."""
    found = message.get("MessageAttributes", {}).get(name)
    try:
        return float(found["StringValue"]) if found else default
    except (KeyError, TypeError, ValueError):
        return default


def _system(message: Mapping[str, Any], name: str) -> int:
    try:
        return int(message.get("Attributes", {}).get(name, 0))
    except (TypeError, ValueError):
        return 0


def rest_seconds(message: Mapping[str, Any]) -> float:
    """Return how long a received message must still wait before it may run (0 if due).

    Uses the server's clock only: the hop's earliest visibility is ``SentTimestamp +
    asynctasq-hop``; any lateness of this receive (``ApproximateFirstReceiveTimestamp``
    after that) is taken off ``asynctasq-rest``. An earlier receive can only make the
    answer larger, so a delay never ends early.
    """
    rest = attribute(message, REST, 0.0)
    if rest <= 0:
        return 0.0
    visible_ms = _system(message, "SentTimestamp") + attribute(message, HOP, 0.0) * 1000
    received_ms = _system(message, "ApproximateFirstReceiveTimestamp")
    late = max(0.0, (received_ms - visible_ms) / 1000) if received_ms else 0.0
    return max(0.0, rest - late)


def next_hop(message: Mapping[str, Any], rest: float, hop_seconds: int) -> Send:
    """Return the re-sent copy of a received hop message that must wait ``rest`` more seconds."""
    attributes = {
        name: {"DataType": value["DataType"], "StringValue": value["StringValue"]}
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return deferred(str(message.get("Body", "")), attributes, rest, hop_seconds)


def delivery_count(message: Mapping[str, Any]) -> int:
    """Return ``asynctasq-base`` + SQS' ``ApproximateReceiveCount`` (at least 1)."""
    base = int(attribute(message, BASE, 0.0))
    return base + max(1, _system(message, "ApproximateReceiveCount"))


def decode_body(text: str) -> bytes:
    """Return the task body of a received SQS body; a non-base64 body is returned as UTF-8.

    A foreign body then reaches the worker, which dead-letters what it cannot decode.
    """
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode()


def dead_body(entry: DeadLetterEntry, vt_seconds: int, limit_bytes: int) -> str:
    """Return the JSON body of a dead letter; an over-long error message is shortened to fit."""
    fields: dict[str, Any] = {
        **attrs.asdict(entry),
        "body": base64.b64encode(entry.body).decode("ascii"),
        "vt": vt_seconds,
    }
    text = json.dumps(fields)
    message = entry.error_message
    while len(text.encode()) > limit_bytes and message:
        message = message[: len(message) // 2]
        fields["error_message"] = message + " [truncated]"
        text = json.dumps(fields)
    return text


def parse_dead(text: str) -> tuple[DeadLetterEntry, int]:
    """Return the entry and visibility timeout kept in a dead letter's JSON body.

    Raises:
        ValueError: the body is not a dead letter written by :func:`dead_body`.

    """
    try:
        found = json.loads(text)
        entry = DeadLetterEntry(
            queue=str(found["queue"]),
            body=base64.b64decode(found["body"], validate=True),
            task_id=str(found["task_id"]),
            task_name=str(found["task_name"]),
            error_type=str(found["error_type"]),
            error_message=str(found["error_message"]),
            attempts=int(found["attempts"]),
            failed_at=float(found["failed_at"]),
        )
        return entry, int(found.get("vt", DEFAULT_VISIBILITY_SECONDS))
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ValueError(f"not an asynctasq dead letter: {exc}") from exc


def batches(sends: list[Send], limit_bytes: int = MESSAGE_LIMIT_BYTES) -> list[list[Send]]:
    """Split ``sends`` into ``SendMessageBatch`` calls: at most 10 and ``limit_bytes`` each."""
    found: list[list[Send]] = []
    size = 0
    for send in sends:
        if not found or len(found[-1]) >= MAX_BATCH or size + send.size > limit_bytes:
            found.append([])
            size = 0
        found[-1].append(send)
        size += send.size
    return found
