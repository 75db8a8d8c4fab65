"""Checking the lists of names (queues, task ids) the monitoring functions take.

A ``str`` is itself iterable, so ``requeue_dead_letters(handle, "emails", "3f2a...")``
would requeue the ids ``"3"``, ``"f"``, ...; it is refused instead.
"""

from __future__ import annotations

from collections.abc import Iterable


def name_list(value: Iterable[str], parameter: str) -> list[str]:
    """Return ``value`` as a list of names, refusing a lone string.

    Args:
        value: the names, e.g. ``["emails", "default"]``.
        parameter: the parameter's name, for the message.

    Raises:
        TypeError: ``value`` is a ``str`` or ``bytes`` (not a list of them), or an item is
            not a ``str``; the message names the parameter (and the item's position).

    """
    if isinstance(value, str | bytes):
        raise TypeError(
            f"{parameter} must be a list of names, not a {type(value).__name__}: pass [{value!r}]"
        )
    found = list(value)
    for index, item in enumerate(found):
        if not isinstance(item, str):
            raise TypeError(f"{parameter}[{index}] must be a str, got {type(item).__name__}")
    return found
