"""Publishing event payloads on a Redis Pub/Sub channel (the Redis event emitter's client).

:class:`~asynctasq.events.emitters.RedisEventEmitter` builds one with
:func:`build_publisher` on first use; the broker client lives here because only
``asynctasq.drivers`` imports broker clients. One connection, no retries: an event that
cannot be published is lost (the emitter counts and logs it), never retried into a backlog.

Watch a stream with ``redis-cli SUBSCRIBE asynctasq:events``.

Source: Redis docs, "PUBLISH" (fire and forget: subscribers not connected miss it).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from asynctasq.config.mask import scrub
from asynctasq.errors import DriverError

TIMEOUT_SECONDS = 5.0
"""Connect and socket timeout: a Redis that stops answering costs events, not a stuck emitter."""

PUBLISH_ALL = """
-- KEYS[1] channel; ARGV: payloads, published in order. Returns how many.
for i = 1, #ARGV do redis.call('PUBLISH', KEYS[1], ARGV[i]) end
return #ARGV
"""
"""One command for a whole batch: far cheaper for the client than one ``PUBLISH`` each."""

BATCH = 1000
"""Payloads per script call."""


class RedisPublisher:
    """Publishes payloads on a channel over one Redis connection.

    Args:
        url: the Redis URL (``redis://``, ``rediss://`` or ``unix://``).
        password: a password given apart from the URL (``redis.password``), or ``None``.

    """

    def __init__(self, url: str, *, password: str | None = None) -> None:
        self._secrets = [password or "", urlsplit(url).password or ""]
        self._client = Redis.from_url(
            url,
            password=password,
            max_connections=1,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            client_name="asynctasq-events",
        )
        self._publish_all = self._client.register_script(PUBLISH_ALL)

    async def publish(self, channel: str, payloads: Sequence[bytes]) -> None:
        """Publish each payload on ``channel``, in order (a batch in one script call).

        Raises:
            DriverError: Redis failed (the message has no password).

        """
        try:
            if len(payloads) == 1:
                await self._client.publish(channel, payloads[0])
                return
            for start in range(0, len(payloads), BATCH):
                await self._publish_all([channel], payloads[start : start + BATCH])
        except (RedisError, OSError) as exc:
            detail = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
            raise DriverError("redis", "publish event", detail) from exc

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._client.aclose()


def build_publisher(url: str, *, password: str | None = None) -> RedisPublisher:
    """Return a publisher for ``url`` (it connects on the first publish)."""
    return RedisPublisher(url, password=password)
