"""Quieting aio-pika's and aiormq's own log lines while a broker is unreachable.

During an outage aio-pika's robust connection retries every ``reconnect_seconds``, and
every attempt logs an ERROR (aiormq: ``error when creating transport``), a WARNING and an
INFO; a dropped connection adds tracebacks and one ERROR per channel callback — about four
lines a second for a worker and its lease thread, for as long as the outage lasts. The
driver says what matters itself (:mod:`rabbitmq_link`: the connection was lost, it is back).

:class:`Quiet`, a logging filter installed on those libraries' loggers (:data:`LOGGERS`) by
the first driver that opens, passes the first record of each kind (logger and message
template) and drops its repeats for :data:`REPEAT_SECONDS`; the next one says how many were
dropped. A traceback becomes one line (exception type and message). When a connection is
established again, every kind is forgotten (:meth:`Quiet.reset`): the next outage is
reported afresh. DEBUG records pass untouched. To see every line, remove the filter:
``asynctasq.drivers.rabbitmq_quiet.uninstall()``.
"""

from __future__ import annotations

import logging
import threading
import time

LOGGERS = (
    "aiormq.connection",
    "aiormq.channel",
    "aio_pika.connection",
    "aio_pika.robust_connection",
    "aio_pika.channel",
    "aio_pika.robust_channel",
    "aio_pika.queue",
    "aio_pika.robust_queue",
    "aio_pika.message",
    "aio_pika.tools",
)
"""The loggers the filter is installed on (a logger's filter does not see its children)."""

REPEAT_SECONDS = 60.0
"""A kind of record is passed at most once per this many seconds until a reconnection."""


class Quiet(logging.Filter):
    """Pass the first record of each kind, drop repeats (see the module docstring).

    Thread-safe: drivers in other threads (a worker's lease thread) log through it too.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether to log ``record`` (shortened to one line), counting drops."""
        if record.levelno < logging.INFO:
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            passed_at, dropped = self._seen.get(key, (-REPEAT_SECONDS, 0))
            if now - passed_at < REPEAT_SECONDS:
                self._seen[key] = (passed_at, dropped + 1)
                return False
            self._seen[key] = (now, 0)
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{text}: {type(exc).__name__}: {exc}"
            record.exc_info = None
            record.exc_text = None
        if dropped:
            text = f"{text} ({dropped} more like it in the last {REPEAT_SECONDS:g} s not shown)"
        record.msg, record.args = text, None
        return True

    def reset(self) -> None:
        """Forget every kind seen: a connection was established again."""
        with self._lock:
            self._seen.clear()


QUIET = Quiet()
"""The one filter every driver of the process shares."""

_state = {"installed": False, "refused": False}
_install_lock = threading.Lock()


def install() -> None:
    """Install :data:`QUIET` on :data:`LOGGERS` (once per process; not after :func:`uninstall`)."""
    with _install_lock:
        if _state["installed"] or _state["refused"]:
            return
        for name in LOGGERS:
            logging.getLogger(name).addFilter(QUIET)
        _state["installed"] = True


def uninstall() -> None:
    """Remove the filter for good: aio-pika and aiormq log every line again."""
    with _install_lock:
        for name in LOGGERS:
            logging.getLogger(name).removeFilter(QUIET)
        _state.update(installed=False, refused=True)
