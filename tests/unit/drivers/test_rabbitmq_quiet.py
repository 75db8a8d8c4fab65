"""The filter that quiets aio-pika's and aiormq's repeated lines during an outage."""

from __future__ import annotations

import logging

import pytest

from asynctasq.drivers import rabbitmq_quiet as quiet


def record(
    msg: str, *args: object, level: int = logging.ERROR, exc: BaseException | None = None
) -> logging.LogRecord:
    made = logging.LogRecord("aiormq.connection", level, __file__, 1, msg, args, None)
    if exc is not None:
        made.exc_info = (type(exc), exc, exc.__traceback__)
    return made


def test_the_first_record_of_a_kind_passes_and_its_repeats_are_counted() -> None:
    gate = quiet.Quiet()
    first = record("error when creating transport: %r", ConnectionRefusedError(111))
    assert gate.filter(first)
    assert first.getMessage() == "error when creating transport: ConnectionRefusedError(111)"
    assert not gate.filter(record("error when creating transport: %r", OSError(113)))
    assert not gate.filter(record("error when creating transport: %r", OSError(113)))
    assert gate.filter(record("another kind"))


def test_a_repeat_after_the_repeat_window_passes_saying_how_many_were_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = quiet.Quiet()
    clock = iter([0.0, 1.0, 2.0, 61.0])
    monkeypatch.setattr(quiet.time, "monotonic", lambda: next(clock))
    for _ in range(3):
        gate.filter(record("attempt failed"))
    later = record("attempt failed")
    assert gate.filter(later)
    assert later.getMessage() == "attempt failed (2 more like it in the last 60 s not shown)"


def test_a_traceback_becomes_one_line() -> None:
    try:
        raise ConnectionResetError("reset by peer")
    except ConnectionResetError as exc:
        made = record("Cancelling cause reader exited abnormally", level=logging.WARNING, exc=exc)
    assert quiet.Quiet().filter(made)
    assert made.exc_info is None
    assert made.getMessage() == (
        "Cancelling cause reader exited abnormally: ConnectionResetError: reset by peer"
    )


def test_a_reconnection_lets_the_next_outage_be_reported_again() -> None:
    gate = quiet.Quiet()
    assert gate.filter(record("closed. Reconnecting"))
    assert not gate.filter(record("closed. Reconnecting"))
    gate.reset()
    assert gate.filter(record("closed. Reconnecting"))


def test_debug_records_pass_untouched() -> None:
    gate = quiet.Quiet()
    for _ in range(3):
        made = record("Prepare to send %r", "frame", level=logging.DEBUG)
        assert gate.filter(made)
        assert made.args == ("frame",)
