"""Run moto's server with its SQS backend made thread-safe: ``python moto_sqs.py HOST PORT``.

moto's server handles each request in its own thread, but its SQS backend does not lock:
two receives at once can hand out the same message (a duplicate that real SQS keeps
rare), and a delete rebuilding the message list can drop a message sent meanwhile. Here
every SQS backend call holds one lock; a long poll holds it only while it looks, and
waits for new messages (or the next second, when delayed or leased ones may become
visible) without it, as SQS does.

Speed: moto's SQS checks each message's visibility with a clock read built from datetime
objects (about 17 µs), once or twice per message per call; the same value from
``time.time()`` makes long queues usable (same results, no datetime).
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.server import main
from moto.sqs import models
from moto.sqs.models import SQSBackend

LOCK = threading.RLock()
LOCKED = (
    "create_queue",
    "delete_queue",
    "get_queue_attributes",
    "set_queue_attributes",
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with LOCK:
            return method(*args, **kwargs)

    return call


def _receive(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def receive(
        backend: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with LOCK:
                found = method(
                    backend, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            backend.get_queue(queue_name).wait_for_messages(min(1.0, remaining))

    return receive


def _fast_clock(slow: Callable[..., float], scale: float) -> Callable[..., float]:
    @functools.wraps(slow)
    def now(dt: Any = None) -> float:
        return time.time() * scale if dt is None else slow(dt)

    return now


def patch() -> None:
    """Make the SQS backend's calls atomic and its clock cheap (see the module docstring)."""
    models.unix_time = _fast_clock(models.unix_time, 1.0)
    models.unix_time_millis = _fast_clock(models.unix_time_millis, 1000.0)
    for name in LOCKED:
        setattr(SQSBackend, name, _locked(getattr(SQSBackend, name)))
    SQSBackend.receive_message = _receive(SQSBackend.receive_message)


if __name__ == "__main__":
    patch()
    host, port = sys.argv[1], sys.argv[2]
    main(["-H", host, "-p", port])
