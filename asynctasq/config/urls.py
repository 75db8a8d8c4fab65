"""Sanity checks for connection URLs and DSNs, and the Redis database a URL selects.

Pure string functions. Every message names what is wrong without repeating the URL, so a
password inside it never reaches an error; callers show the URL masked.

The Redis database rule (FIELD-CASES C31) is documented on
:class:`~asynctasq.config.records.RedisConfig` and implemented by :func:`redis_url_db`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

SCHEMES: dict[str, tuple[str, ...]] = {
    "redis.url": ("redis", "rediss", "unix"),
    "events.redis_url": ("redis", "rediss", "unix"),
    "postgres.dsn": ("postgresql", "postgres"),
    "mysql.dsn": ("mysql",),
    "rabbitmq.url": ("amqp", "amqps"),
    "sqs.endpoint_url": ("http", "https"),
}
"""Accepted URL schemes per URL-valued setting.

Source: redis-py ``from_url``; asyncpg ``connect(dsn)``; aio-pika ``connect_robust``;
boto3 ``endpoint_url``.
"""

ENCODE_HINT = (
    "cannot be parsed: percent-encode the password (and user name): "
    "'@' as %40, '#' as %23, '/' as %2F, '?' as %3F, '%' as %25"
)

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DB_PATH = re.compile(r"/([0-9]+)")


def scheme_of(url: str) -> str:
    """Return the lower-case scheme of ``url`` (``""`` when it has none)."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""


def safe_mask(url: str) -> str:
    """Return ``scheme://***``: what to show of a URL whose password could not be located."""
    scheme = scheme_of(url)
    return f"{scheme}://***" if scheme else "***"


def credentials_problem(url: str) -> str | None:
    """Return why ``url`` cannot be split into user, password and host, or ``None``.

    A raw ``@``, ``#``, ``/`` or ``?`` in the password, or a ``%`` not followed by two hex
    digits, makes the URL parse differently from what was meant (the host becomes part of
    the password, or the password becomes a port or a path).

    Source: FIELD-CASES C29; RFC 3986 §3.2.1 (userinfo).
    """
    if "#" in url:
        return ENCODE_HINT
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return ENCODE_HINT
    after_host = parts.path + "?" + parts.query
    if parts.netloc.count("@") > 1 or ("@" in after_host and "@" not in parts.netloc):
        return ENCODE_HINT
    userinfo = parts.netloc.rpartition("@")[0]
    if _BAD_ESCAPE.search(userinfo):
        return ENCODE_HINT
    return None


def url_problem(path: str, url: str) -> str | None:
    """Return why the URL-valued setting ``path`` holding ``url`` is unusable, or ``None``."""
    schemes = SCHEMES.get(path)
    if schemes and scheme_of(url) not in schemes:
        wanted = ", ".join(f"{s}://" for s in schemes)
        return f"must start with one of {wanted}"
    return credentials_problem(url)


def redis_url_db(url: str) -> tuple[int | None, str | None]:
    """Return the database a Redis URL selects, and why it is malformed.

    ``redis://`` and ``rediss://`` URLs may name the database in the path (``/2``) and/or
    in the query (``?db=2``); ``unix://`` URLs only in the query (their path is the
    socket). A path other than empty, ``/`` or ``/<digits>`` (``/abc``, ``/1/2``, ``/1.5``,
    ``//7``) is malformed; so is a non-numeric or repeated ``?db=``, and a path and query
    that name different databases.

    Args:
        url: a URL that passed :func:`url_problem`.

    Returns:
        ``(database or None when the URL names none, None)`` or ``(None, reason)``.

    Source: FIELD-CASES C31; redis-py ``parse_url`` (querystring > path > keyword).

    """
    parts = urlsplit(url)
    from_query: int | None = None
    given = parse_qs(parts.query, keep_blank_values=True).get("db", [])
    if len(given) > 1:
        return None, "names the database more than once with ?db="
    if given:
        if not given[0].strip().isdigit():
            return None, "?db= must be a whole number"
        from_query = int(given[0])
    if parts.scheme.lower() == "unix":
        return from_query, None
    from_path: int | None = None
    if parts.path not in ("", "/"):
        match = _DB_PATH.fullmatch(parts.path)
        if match is None:
            return None, "the URL path must be empty or /<database number>, e.g. /2"
        from_path = int(match.group(1))
    if from_path is not None and from_query is not None and from_path != from_query:
        return None, f"names database {from_path} in its path but {from_query} in ?db="
    return (from_query if from_query is not None else from_path), None
