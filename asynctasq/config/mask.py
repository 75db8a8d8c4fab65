"""Masking of secrets for every place a value is shown: repr, errors, logs, CLI output.

Pure string functions, no configuration knowledge: callers decide what is secret (from
``FieldMeta.secret`` / ``FieldMeta.url``).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# scheme://user:password@host... ; the password runs to the LAST '@' before the path, so
# raw (unencoded) '@' or '#' in a password is still covered; a raw '@' in the user name
# (Azure-style "me@tenant") is allowed too.
_URL_PASSWORD = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/]*:)(?P<pw>.*)@(?P<tail>[^@]*)$"
)
_KV_PASSWORD = re.compile(
    r"(?i)(?P<key>\b(?:password|pwd|pass)\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|\S+)"
)
_QUERY_PASSWORD = re.compile(r"(?i)(?P<key>[?&](?:password|pwd|pass)=)(?P<pw>[^&#]*)")


def mask_secret(value: Any) -> str:
    """Return ``'***'`` for a set secret and ``'None'`` for an unset one."""
    return "None" if value is None else MASK


def mask_url(value: str) -> str:
    """Return ``value`` with any password inside it replaced by ``***``.

    Handles ``scheme://user:password@host`` (even when the password holds raw ``@``, ``#``
    or ``/``), ``?password=`` query parameters and libpq ``key=value`` DSNs.

    >>> mask_url("postgresql://app:s3cret@db/app")
    'postgresql://app:***@db/app'
    """
    masked = value
    match = _URL_PASSWORD.match(masked)
    if match and match.group("pw"):
        masked = f"{match.group('head')}{MASK}@{match.group('tail')}"
    if "://" in masked:
        return _QUERY_PASSWORD.sub(lambda m: f"{m.group('key')}{MASK}", masked)
    return _KV_PASSWORD.sub(lambda m: f"{m.group('key')}{MASK}", masked)


def mask_url_repr(value: Any) -> str:
    """Return the ``repr`` of a URL-valued field with its password masked."""
    return "None" if value is None else repr(mask_url(str(value)))


def scrub(text: str, secrets: list[str]) -> str:
    """Remove each secret in ``secrets`` (and its URL-masked forms) from free text.

    Used on broker client messages before they reach logs or errors.
    """
    cleaned = text
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, MASK)
    return mask_url(cleaned) if "://" in cleaned else cleaned
