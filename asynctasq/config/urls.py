"""Sanity checks for connection URLs and DSNs, and the Redis database a URL selects.

Pure string functions. Every message names what is wrong without repeating the URL, so a
password inside it never reaches an error; callers show the URL masked.

The Redis database rule (FIELD-CASES C31) is documented on
:class:`~asynctasq.config.records.RedisConfig` and implemented by :func:`redis_url_db`.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qs, urlsplit

SCHEMES: dict[str, tuple[str, ...]] = {
    "redis.url": ("redis", "rediss", "unix"),
    "events.redis_url": ("redis", "rediss", "unix"),
    "postgres.dsn": ("postgresql", "postgres"),
    "mysql.dsn": ("mysql",),
    "rabbitmq.url": ("amqp", "amqps"),
    "sqs.endpoint_url": ("http", "https"),
    "sqs.queue_url_prefix": ("http", "https"),
}
"""Accepted URL schemes per URL-valued setting.

Source: redis-py ``from_url``; asyncpg ``connect(dsn)``; aio-pika ``connect_robust``;
boto3 ``endpoint_url``; SQS queue URLs (``https://sqs.<region>.amazonaws.com/<account>/``).
"""

HOST_REQUIRED = frozenset({"redis", "rediss", "amqp", "amqps", "http", "https"})
"""Schemes whose URL must name a host. ``unix://`` names a socket path instead, and a
PostgreSQL or MySQL DSN without a host means the local socket (libpq's rule)."""

MULTI_HOST = frozenset({"postgres.dsn"})
"""Settings whose URL may list several ``host[:port]`` separated by commas.

Source: asyncpg ``connect(dsn)`` (``postgresql://u:p@h1:5432,h2:5432/db``, as libpq).
"""

ENCODE_HINT = (
    "cannot be parsed: percent-encode the password (and user name): "
    "'@' as %40, '#' as %23, '/' as %2F, '?' as %3F, '%' as %25"
)

PORT_RULE = "has an invalid port: a port must be a whole number from 1 to 65535"
UNCLOSED_BRACKET = "has an unclosed '[' in the host: write an IPv6 address as [::1] or [::1]:6379"
STRAY_BRACKET = "has a ']' without '[' in the host"
BARE_IPV6 = "has an IPv6 address without brackets: write it as [::1] or [::1]:6379"
NO_HOST = "names no host, e.g. {scheme}://localhost"
BAD_IPV6 = "has a host in brackets that is not an IPv6 address"
SEVERAL_HOSTS = "lists several hosts; only postgres.dsn accepts a comma-separated host list"

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DB_PATH = re.compile(r"/([0-9]+)")
_AUTHORITY_END = re.compile(r"[/?#]")


def scheme_of(url: str) -> str:
    """Return the lower-case scheme of ``url`` (``""`` when it has none)."""
    head, sep, _ = url.partition("://")
    return head.lower() if sep else ""


def safe_mask(url: str) -> str:
    """Return ``scheme://***``: what to show of a URL whose password could not be located."""
    scheme = scheme_of(url)
    return f"{scheme}://***" if scheme else "***"


def _authority(url: str) -> tuple[str, str]:
    """Return ``(authority, rest)``: the text between ``://`` and the first ``/?#``, and after."""
    after = url.partition("://")[2]
    end = _AUTHORITY_END.search(after)
    cut = end.start() if end else len(after)
    return after[:cut], after[cut:]


def credentials_problem(url: str) -> str | None:
    """Return why ``url`` cannot be split into user, password and host, or ``None``.

    A raw ``@``, ``#``, ``/``, ``?``, ``[`` or ``]`` in the password, or a ``%`` not followed
    by two hex digits, makes the URL parse differently from what was meant (the host
    becomes part of the password, or the password becomes a port or a path).

    Source: FIELD-CASES C29; RFC 3986 §3.2.1 (userinfo).
    """
    if "#" in url:
        return ENCODE_HINT
    authority, rest = _authority(url)
    if authority.count("@") > 1 or ("@" in rest and "@" not in authority):
        return ENCODE_HINT
    userinfo = authority.rpartition("@")[0]
    if _BAD_ESCAPE.search(userinfo) or "[" in userinfo or "]" in userinfo:
        return ENCODE_HINT
    return None


def _is_ipv6(address: str) -> bool:
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def host_problem(host: str) -> str | None:
    """Return why one ``host[:port]`` (``[v6]`` or ``[v6]:port`` too) is malformed, or ``None``.

    An empty host is not checked here (see :data:`HOST_REQUIRED`); an empty port
    (``host:``) is allowed, as ``urllib`` allows it.
    """
    if host.startswith("["):
        address, closed, after = host[1:].partition("]")
        if not closed:
            return UNCLOSED_BRACKET
        if not _is_ipv6(address):
            return BAD_IPV6
        if after and not after.startswith(":"):
            return STRAY_BRACKET if "]" in after else PORT_RULE
        port = after[1:]
    elif "]" in host or "[" in host:
        return STRAY_BRACKET if "]" in host else UNCLOSED_BRACKET
    elif host.count(":") > 1:
        return BARE_IPV6
    else:
        port = host.partition(":")[2]
    if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return PORT_RULE
    return None


def _hosts_problem(path: str, url: str) -> str | None:
    scheme = scheme_of(url)
    if scheme == "unix":
        return None
    hostport = _authority(url)[0].rpartition("@")[2]
    hosts = hostport.split(",") if path in MULTI_HOST else [hostport]
    if path not in MULTI_HOST and "," in hostport:
        return SEVERAL_HOSTS
    for host in hosts:
        found = host_problem(host)
        if found is not None:
            return found
        if (host == "" or host.startswith(":")) and scheme in HOST_REQUIRED:
            return NO_HOST.format(scheme=scheme)
    return None


def url_problem(path: str, url: str) -> str | None:
    """Return why the URL-valued setting ``path`` holding ``url`` is unusable, or ``None``.

    Checked in order: the scheme (:data:`SCHEMES`), the credentials (:func:`credentials_problem`,
    the "percent-encode" message), then each host and port (:func:`host_problem`): a port
    that is not a number from 1 to 65535, an unclosed IPv6 bracket, a missing host where the
    scheme needs one (:data:`HOST_REQUIRED`), several hosts where only one is accepted
    (:data:`MULTI_HOST`).
    """
    schemes = SCHEMES.get(path)
    if schemes and scheme_of(url) not in schemes:
        wanted = ", ".join(f"{s}://" for s in schemes)
        return f"must start with one of {wanted}"
    return credentials_problem(url) or _hosts_problem(path, url)


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
    try:
        parts = urlsplit(url)
    except ValueError:
        return None, "cannot be parsed"
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
