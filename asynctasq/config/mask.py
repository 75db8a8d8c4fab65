"""Masking of secrets for every place a value is shown: repr, errors, logs, CLI output.

Pure string functions, no configuration knowledge: callers decide what is secret (from
``FieldMeta.secret`` / ``FieldMeta.url``). :func:`mask_urls_in_text` is the catch-all for
free-form values (``tortoise_orm``, an engine's repr, a value given for an unknown key):
it masks every URL password, ``password=...`` pair and password-like mapping key it finds
anywhere in a text.
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

# A URL inside longer text runs from its scheme to the next whitespace. Quotes and commas
# stay inside the token on purpose: a password runs to the token's LAST '@', so a raw quote
# or comma in a password is covered too (at worst a little text after the URL is masked).
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S*")
# password=... / pwd=... in a repr or a libpq DSN inside text; "None" (unset) is kept.
_KV_IN_TEXT = re.compile(
    r"(?i)(?P<key>\b(?:password|passwd|pwd|pass)\s*=\s*)"
    r"(?!None\b)(?P<pw>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&)}\]]+)"
)
# 'password': 'x' / "db_password": "x" in the repr of a mapping (Tortoise credentials).
_HIDDEN_KEY = r"[\w.\-]*(?:password|passwd|pwd|secret|token)[\w.\-]*"
_MAPPING_SECRET = re.compile(
    r"(?i)(?P<key>(?P<q>['\"])" + _HIDDEN_KEY + r"(?P=q)\s*:\s*)"
    r"(?!None\b)(?P<pw>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,}\]]+)"
)
_HIDDEN_KEY_NAME = re.compile(r"(?i)" + _HIDDEN_KEY)


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


def is_secret_key(key: str) -> bool:
    """Return whether a mapping key names a secret (``password``, ``db_pwd``, ``api_token``...).

    Used on free-form mappings such as a Tortoise ORM ``credentials`` dict.
    """
    return _HIDDEN_KEY_NAME.fullmatch(key) is not None


def mask_urls_in_text(text: str) -> str:
    """Return ``text`` with every password found anywhere in it replaced by ``***``.

    Masks the password of each ``scheme://user:password@host`` URL in the text (as
    :func:`mask_url` does for a whole value), ``password=...`` / ``pwd=...`` pairs, and the
    value of a quoted password-like key in a mapping's repr (``'password': 'x'``). Meant for
    free-form values whose structure is unknown: the repr of ``tortoise_orm``, an object's
    repr, a value given where a setting group was expected.

    >>> mask_urls_in_text("{'db_url': 'postgres://user:s3cret@localhost/db'}")
    "{'db_url': 'postgres://user:***@localhost/db'}"
    """
    masked = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
    masked = _KV_IN_TEXT.sub(lambda m: f"{m.group('key')}{MASK}", masked)
    return _MAPPING_SECRET.sub(_masked_mapping_value, masked)


def _masked_mapping_value(match: re.Match[str]) -> str:
    quote = match.group("pw")[0] if match.group("pw")[0] in "'\"" else ""
    return f"{match.group('key')}{quote}{MASK}{quote}"


def mask_repr(value: Any) -> str:
    """Return ``repr(value)`` with :func:`mask_urls_in_text` applied (free-form fields)."""
    return mask_urls_in_text(repr(value))


def scrub(text: str, secrets: list[str]) -> str:
    """Remove each secret in ``secrets`` (and its URL-masked forms) from free text.

    Used on broker client messages before they reach logs or errors.
    """
    cleaned = text
    for secret in secrets:
        if secret:
            cleaned = cleaned.replace(secret, MASK)
    return mask_url(cleaned) if "://" in cleaned else cleaned
