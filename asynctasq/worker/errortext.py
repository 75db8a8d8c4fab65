"""Error text the worker stores and logs: always printable, storable and bounded.

A task's exception can carry anything: a 100 KB message, a class name longer than a
database column, NUL characters (PostgreSQL ``TEXT`` refuses them), unpaired surrogates
(no UTF-8 encoder takes them; file names decoded with ``surrogateescape`` have them), or a
``__str__`` that raises. A dead letter the broker refuses would be retried until its lease
expires and the real error lost, so every text goes through :func:`cut` first:

* :func:`cut` keeps the beginning of a text within a byte limit and says it was cut;
* :func:`error_text` is ``str(error)`` that never raises;
* :func:`describe_error` is the ``"Type: message"`` of log lines, at most
  :data:`MAX_LOG_ERROR_BYTES`.

The limits of the dead-letter fields are the driver protocol's (``MAX_ERROR_MESSAGE_BYTES``
and its neighbours in :mod:`asynctasq.drivers.protocol`).
"""

from __future__ import annotations

MAX_LOG_ERROR_BYTES = 2048
"""The longest ``"Type: message"`` a per-task log line prints, UTF-8 bytes."""


def storable(text: str) -> str:
    r"""Return ``text`` as valid UTF-8 without NUL: ``\udcff`` and ``\x00`` written out."""
    clean = text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")
    return clean.replace("\x00", "\\x00") if "\x00" in clean else clean


def cut(text: str, limit_bytes: int) -> str:
    """Return :func:`storable` ``text`` in at most ``limit_bytes`` UTF-8 bytes.

    A longer text keeps its beginning (never half a character) and ends with
    ``"... [cut, N bytes in all]"``, N being the storable text's full UTF-8 length.

    Args:
        text: any string.
        limit_bytes: the most UTF-8 bytes of the result (at least 64, so the note fits).

    Example:
        ``cut("é" * 100, 64)`` is 18 ``"é"`` then ``"... [cut, 200 bytes in all]"`` (63
        bytes: a 19th ``"é"`` would not fit whole).
    """
    clean = storable(text)
    if len(clean) * 4 <= limit_bytes:  # fits whatever the characters are
        return clean
    data = clean.encode("utf-8")
    if len(data) <= limit_bytes:
        return clean
    note = f"... [cut, {len(data)} bytes in all]"
    keep = max(0, limit_bytes - len(note))
    return data[:keep].decode("utf-8", "ignore") + note


def error_text(error: BaseException) -> str:
    """Return ``str(error)``, or ``"<str() of the Type failed: ...>"`` when that raises."""
    try:
        return str(error)
    except Exception as exc:  # a broken __str__ must not break settling
        return f"<str() of the {type(error).__name__} failed: {type(exc).__name__}>"


def describe_error(error: BaseException) -> str:
    """Return ``"Type: message"`` for log lines, at most :data:`MAX_LOG_ERROR_BYTES` bytes."""
    return cut(f"{type(error).__name__}: {error_text(error)}", MAX_LOG_ERROR_BYTES)
