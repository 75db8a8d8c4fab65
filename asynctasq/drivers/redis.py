"""The Redis driver: redis-py asyncio over lists, sorted sets and Lua scripts (Redis >= 6.2).

Layout and element format: :mod:`asynctasq.drivers.redis_format`. Every move between the
ready list, the processing set, the delayed set and the dead list is one Lua script
(:mod:`asynctasq.drivers.redis_scripts`) using the server's clock. Idle consumers block in
``BLMOVE`` (:mod:`asynctasq.drivers.redis_wakeup`) instead of polling, which hands them the
element itself (into a per-worker grab list), so an idle worker starts a task one round
trip sooner.

Behaviour choices:

* ``release`` lowers the element's delivery count again: the next delivery reports the same
  ``delivery_count`` as the released one (releasing is not an attempt).
* Due delayed messages join the back of the ready queue (FIFO by due time); expired leases
  go back to the front, earliest deadline first (they were taken from the front).
  ``maintain`` returns the seconds until the next delayed message is due, so a worker can
  promote it within milliseconds of its due time.
* Foreign data never breaks a script half-way: an element without our header (pushed by
  hand or by another program) is delivered with a synthesized one and dead-lettered by the
  worker as undecodable; a key of the wrong type makes the call raise ``DriverError``
  before anything moved (:mod:`asynctasq.drivers.redis_scripts`).
* Connections: one ``BlockingConnectionPool`` of ``max_connections``; when every connection
  is busy a call waits up to ``pool_timeout_seconds`` (C35). Blocking waits use a separate
  pool, one connection per queue being waited on, so they never starve acks.
* Reconnection: each command is retried on connection errors with jittered exponential
  backoff (``retries`` times, at most ``backoff_cap_seconds`` apart); after that the call
  raises ``DriverError`` and the next call reconnects from scratch, so a Redis restart never
  leaves the driver unusable. A command whose reply timed out (redis-py's 5 s socket
  timeout: a stalled server or network) is not retried, because it may have run: an enqueue
  then raises ``DriverError`` saying the message may or may not have been stored, rather than
  storing it twice behind the caller's back.
* Claims are numbered per driver and the claim script keeps the last one's answer
  (:func:`~asynctasq.drivers.redis_format.claim_key`): a claim repeated after its reply was
  lost (by redis-py's retry or by the worker's next fetch) gets the same deliveries instead
  of stranding them until their visibility timeout, and a late copy of an earlier claim
  moves nothing. ``close`` gives back what a claim with a lost reply took.
* ``close`` is bounded: a driver holding grabbed elements or a claim in doubt gives them
  back only if Redis answers a PING within 1 s, each step within :data:`SHUTDOWN_SECONDS`.
* ``max_message_bytes``: Redis' ``proto-max-bulk-len`` (512 MiB by default) minus room for
  the element header and dead-letter fields; pass a smaller value to bound messages.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from asynctasq.config.mask import scrub
from asynctasq.config.records import Config, RedisConfig
from asynctasq.drivers import redis_format as form
from asynctasq.drivers import redis_scripts as lua
from asynctasq.drivers.dead_entry_format import pack_dead_entry
from asynctasq.drivers.protocol import DeadLetterEntry, Delivery, Outgoing, QueueSizes
from asynctasq.drivers.redis_grab import Grabs
from asynctasq.drivers.redis_inspect import DEFAULT_COMPLETED_LIMIT, RedisInspection
from asynctasq.errors import DriverError, MessageTooLargeError

logger = logging.getLogger(__name__)

REDIS_MAX_BULK_BYTES = 512 * 1024 * 1024
"""Redis' default ``proto-max-bulk-len``: the largest string a command may carry.

Source: redis.conf, "proto-max-bulk-len 512mb"."""

DEFAULT_MAX_MESSAGE_BYTES = REDIS_MAX_BULK_BYTES - 64 * 1024
MIN_SERVER_VERSION = (6, 2)
"""``RPOP key count`` and ``BLMOVE`` need Redis 6.2. Source: Redis docs, "RPOP", "BLMOVE"."""

SHUTDOWN_SECONDS = 5.0
"""The longest each step of :meth:`RedisDriver.close` may take (giving back grabbed
elements, settling a claim whose reply was lost). Past it the step is abandoned: what it
would have returned comes back when its grab list's registration or its lease lapses."""

LOST_LEASE_LOG_SECONDS = 30.0
"""The shortest interval between two warnings about leases found lost on renewal."""

CLOSE_PING_SECONDS = 1.0
"""How long :meth:`RedisDriver.close` waits for a PING before taking Redis as unreachable."""

_FAILURES = (RedisError, OSError)


class LostLeaseLog:
    """Warns about leases found lost, at most once per :data:`LOST_LEASE_LOG_SECONDS`.

    A lease lost while its task still runs is renewed (and found lost) on every tick of
    the lease loop; one line per interval, with the counts since the last line, says the
    same without flooding the log.
    """

    def __init__(self, operation: str) -> None:
        self._operation = operation
        self._lost = 0
        self._asked = 0
        self._logged_at = -math.inf

    def note(self, lost: int, asked: int) -> None:
        """Count ``lost`` of ``asked`` leases; log the counts if the interval has passed."""
        self._lost += lost
        self._asked += asked
        now = time.monotonic()
        if now - self._logged_at < LOST_LEASE_LOG_SECONDS:
            return
        logger.warning(
            "%s: %d of %d leases were already lost (their tasks may run again elsewhere)",
            self._operation,
            self._lost,
            self._asked,
        )
        self._lost = self._asked = 0
        self._logged_at = now


def _group(deliveries: Sequence[Delivery]) -> dict[str, list[bytes]]:
    groups: dict[str, list[bytes]] = {}
    for delivery in deliveries:
        groups.setdefault(delivery.queue, []).append(delivery.receipt)
    return groups


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


class RedisDriver(RedisInspection):
    """The Redis driver. Built by :func:`build`.

    Also a ``DeadLetterStore``, ``QueueCatalog``, ``WorkerRegistry`` and ``CompletedStore``
    (:mod:`asynctasq.drivers.redis_inspect`).

    Args:
        config: the ``redis`` group: url, password, db, max_connections, warmup_connections,
            delayed_task_interval (becomes ``maintenance_interval_seconds``). A db in the URL
            (path or ``?db=``) takes precedence over ``config.db``, as in redis-py.
        pool_timeout_seconds: how long a call waits for a free pooled connection before
            failing with ``DriverError``; ``None`` waits forever.
        retries: attempts after the first for a command that hit a connection error.
        backoff_cap_seconds: the longest pause between those attempts.
        max_message_bytes: the largest body accepted, or ``None`` for no check.
        client_name: the name shown by ``CLIENT LIST`` for this driver's connections.
        completed_limit: completed tasks kept per queue (``repository.keep_completed_tasks``);
            older ones are trimmed.

    """

    name = "redis"

    def __init__(
        self,
        config: RedisConfig,
        *,
        pool_timeout_seconds: float | None = 30.0,
        retries: int = 5,
        backoff_cap_seconds: float = 2.0,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        client_name: str | None = "asynctasq",
        completed_limit: int = DEFAULT_COMPLETED_LIMIT,
    ) -> None:
        self.maintenance_interval_seconds: float | None = config.delayed_task_interval
        self.max_message_bytes = max_message_bytes
        self.pool_size: int | None = config.max_connections  # optional protocol attribute
        self.completed_limit = completed_limit
        self._config = config
        self._secrets = [config.password or "", urlsplit(config.url).password or ""]
        common: dict[str, Any] = {
            "db": config.db,
            "password": config.password,
            "client_name": client_name,
            # only connection errors are retried: a command whose reply timed out may have
            # run, and running an enqueue twice would store the task twice
            "retry": Retry(
                ExponentialWithJitterBackoff(cap=backoff_cap_seconds, base=0.05),
                retries,
                supported_errors=(RedisConnectionError,),
            ),
        }
        self._pool = BlockingConnectionPool.from_url(
            config.url,
            max_connections=config.max_connections,
            timeout=pool_timeout_seconds,
            **common,
        )
        self._client = Redis(connection_pool=self._pool)
        # blocking waits are never retried by redis-py: a BLMOVE whose reply was lost may
        # have moved an element into the grab list; the failed wait retires that list
        # (redis_wakeup.ReadyWatch) and the worker's fetch loop waits again
        self._watch_pool = ConnectionPool.from_url(
            config.url, socket_timeout=None, **{**common, "retry": Retry(NoBackoff(), 0)}
        )
        self._ids = form.ElementIds()
        self._grabs = Grabs(Redis(connection_pool=self._watch_pool), self._client, self._ids)
        self._claim_key = form.claim_key(self._ids.nonce())
        self._claim_numbers = itertools.count(1)
        self._claims_in_doubt: list[int] = []  # numbers of claims whose reply never came
        self._lost_renewals = LostLeaseLog("extend")
        script = self._client.register_script
        self._enqueue_delayed = script(lua.ENQUEUE_DELAYED)
        self._claim = script(lua.CLAIM)
        self._retry = script(lua.RETRY)
        self._dead_letter = script(lua.DEAD_LETTER)
        self._release = script(lua.RELEASE)
        self._extend = script(lua.EXTEND)
        self._maintain = script(lua.MAINTAIN)
        self._register_inspection_scripts()
        self._opened = False

    def _error(self, operation: str, exc: BaseException) -> DriverError:
        detail = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
        if isinstance(exc, RedisTimeoutError) and operation.startswith("enqueue"):
            detail += " (no reply in time: the message may or may not have been stored)"
        return DriverError(self.name, operation, detail)

    async def open(self) -> None:
        """Check the server (reachable, Redis >= 6.2) and open ``warmup_connections``.

        Raises:
            DriverError: Redis cannot be reached, or is older than 6.2.

        """
        if self._opened:
            return
        try:
            info = await self._client.info("server")
            await self._warm_up()
        except _FAILURES as exc:
            raise self._error("open", exc) from exc
        version = str(info.get("redis_version", "0"))
        if _version(version) < MIN_SERVER_VERSION:
            raise DriverError(
                self.name, "open", f"Redis {version} is too old; 6.2 or newer is needed"
            )
        self._opened = True

    async def _warm_up(self) -> None:
        count = min(self._config.warmup_connections, self._config.max_connections)
        results = await asyncio.gather(
            *(self._pool.get_connection() for _ in range(count)),  # type: ignore[no-untyped-call]
            return_exceptions=True,
        )
        for result in results:
            if not isinstance(result, BaseException):
                await self._pool.release(result)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def close(self) -> None:
        """Give back what this driver holds unstarted, then close every connection (idempotent).

        Elements grabbed by idle waits go back to the front of their queues, and so do the
        deliveries of a claim whose reply was lost (:meth:`_settle_claim`). Each step takes
        at most :data:`SHUTDOWN_SECONDS`. A driver holding such things first checks that
        Redis answers a PING within :data:`CLOSE_PING_SECONDS`; if not, it closes at once and
        the server-side lapses return them instead (a grab list's registration, a lease).
        """
        self._opened = False
        try:
            holds = bool(self._grabs.watch.grabbed_keys or self._claims_in_doubt)
            if holds and not await self._answers_ping():
                await self._grabs.watch.close()  # cancel the waits; nothing is put back
            else:
                await self._give_back()
        finally:  # also when the close itself is cancelled (a stop signal cuts it short)
            await self._client.aclose()
            await self._pool.disconnect()
            await self._watch_pool.disconnect()

    async def _answers_ping(self) -> bool:
        """Return whether Redis answers a PING within :data:`CLOSE_PING_SECONDS` (logged if not)."""
        try:
            async with asyncio.timeout(CLOSE_PING_SECONDS):
                await self._client.ping()
        except (TimeoutError, *_FAILURES) as exc:
            logger.warning(
                "closing without checking for grabbed or claimed messages to give back: "
                "Redis did not answer a PING (%s); any there return to their queues when "
                "their registration or lease lapses",
                type(exc).__name__,
            )
            return False
        return True

    async def _give_back(self) -> None:
        """Put grabbed elements and a lost claim's deliveries back, each step bounded."""
        for step in (self._grabs.close, self._settle_claim):
            try:
                async with asyncio.timeout(SHUTDOWN_SECONDS):
                    await step()
            except TimeoutError:  # Redis is not answering: the later steps would not either
                logger.warning(
                    "closing: Redis did not answer within %g s; what this driver held "
                    "returns to its queues when its leases lapse",
                    SHUTDOWN_SECONDS,
                )
                break

    def _element(self, message: Outgoing) -> bytes:
        self.check_queues([message.queue])  # as RabbitMQ's _triple: before anything is sent
        limit = self.max_message_bytes
        if limit is not None and len(message.body) > limit:
            raise MessageTooLargeError(
                f"message for queue {message.queue!r} is {len(message.body)} bytes; "
                f"the Redis driver accepts at most {limit} bytes"
            )
        return self._ids.element(message.body, message.visibility_timeout_seconds)

    async def enqueue(self, message: Outgoing) -> None:
        """Store one message: one ``LPUSH``, or a script scoring it at server time + delay.

        Raises:
            MessageTooLargeError: the body is larger than ``max_message_bytes``.
            ConfigError: the queue's name is taken (see :meth:`check_queues`).
            DriverError: Redis failed.

        """
        element = self._element(message)
        try:
            if message.delay_seconds > 0:
                delayed: list[bytes | int] = [form.to_ms(message.delay_seconds), element]
                await self._enqueue_delayed([form.delayed_key(message.queue)], delayed)
            else:
                await self._client.lpush(form.ready_key(message.queue), element)
        except _FAILURES as exc:
            raise self._error("enqueue", exc) from exc

    async def enqueue_many(self, messages: Sequence[Outgoing]) -> None:
        """Store many messages in one round trip.

        One ``LPUSH`` per queue, one script per queue for delayed ones, pipelined (not
        transactional: a failure part-way may leave a part stored).

        Raises:
            MessageTooLargeError: a body is larger than ``max_message_bytes``.
            ConfigError: a queue's name is taken (see :meth:`check_queues`; nothing sent).
            DriverError: Redis failed.

        """
        ready: dict[str, list[bytes]] = {}
        delayed: dict[str, list[bytes | int]] = {}
        for message in messages:
            element = self._element(message)
            if message.delay_seconds > 0:
                pair: list[bytes | int] = [form.to_ms(message.delay_seconds), element]
                delayed.setdefault(form.delayed_key(message.queue), []).extend(pair)
            else:
                ready.setdefault(form.ready_key(message.queue), []).append(element)
        try:
            if not delayed and len(ready) == 1:
                [(key, elements)] = ready.items()
                await self._client.lpush(key, *elements)
            elif ready or delayed:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, elements in ready.items():
                        pipe.lpush(key, *elements)
                    for key, args in delayed.items():
                        await self._enqueue_delayed([key], args, client=pipe)
                    await pipe.execute()
        except _FAILURES as exc:
            raise self._error("enqueue_many", exc) from exc

    async def _claim_ready(self, keys: list[str], limit: int) -> list[Delivery]:
        """Run the claim script; after a call whose reply was lost, repeat its number.

        The script answers a repeated number with that claim's deliveries (if the lost call
        ran) instead of claiming again, so a lost reply never strands leased messages until
        their visibility timeout (:data:`asynctasq.drivers.redis_scripts.CLAIM`). With
        concurrent claims on one driver (the worker has one fetch loop) a number overtaken
        by a later claim answers nothing: what it claimed comes back after its lease.
        """
        in_doubt = self._claims_in_doubt
        number = in_doubt.pop() if in_doubt else next(self._claim_numbers)
        args: list[int | bytes] = [
            limit,
            self._ids.nonce(),
            form.FOREIGN_LEASE_MS,
            number,
            form.CLAIM_RECORD_MS,
        ]
        try:
            raw: list[Any] = await self._claim([*keys, self._claim_key], args)
        except BaseException:  # it may have run: the next claim repeats its number
            in_doubt.append(number)
            raise
        return [
            form.delivery(form.queue_of_processing(raw[i]), raw[i + 1])
            for i in range(0, len(raw), 2)
        ]

    async def _settle_claim(self) -> None:
        """Give back the deliveries of a claim whose reply was lost, if it ran (on close).

        Repeating its number with a limit of 0 returns what it claimed, or, if it has not
        reached Redis yet, records it as answered with nothing so that it never claims.
        """
        if not self._claims_in_doubt:
            return
        try:
            held = await self._claim_ready([], 0)
            self._claims_in_doubt.clear()  # older numbers answer nothing now
            if held:
                await self.release(held)
                logger.info("gave back %d deliveries of a claim whose reply was lost", len(held))
        except _FAILURES as exc:
            logger.warning("could not settle a claim whose reply was lost: %s", exc)

    async def dequeue(
        self, queues: Sequence[str], *, limit: int, wait_seconds: float
    ) -> list[Delivery]:
        """Lease up to ``limit`` messages, earlier queues first, with one claim script.

        When nothing is ready, blocks (``BLMOVE`` on every queue) up to ``wait_seconds``;
        the element that wakes it is already this driver's (moved into its grab list) and
        is returned at once, its lease written in the background before any later call on
        it (:mod:`asynctasq.drivers.redis_wakeup`).

        Raises:
            DriverError: Redis failed.

        """
        if not queues or limit <= 0:
            return []
        keys = [key for q in queues for key in (form.ready_key(q), form.processing_key(q))]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        try:
            claimed = await self._claim_ready(keys, limit)
            while not claimed and (remaining := deadline - loop.time()) > 0:
                claimed = await self._grabs.wait(queues, keys[0::2], limit, remaining)
                if not claimed:
                    break
        except _FAILURES as exc:
            raise self._error("dequeue", exc) from exc
        return claimed

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove finished messages (one ``ZREM`` per queue, pipelined); lost leases are logged.

        Raises:
            DriverError: Redis failed.

        """
        groups = _group(deliveries)
        await self._grabs.settled()
        try:
            if len(groups) == 1:
                [(queue, members)] = groups.items()
                removed = [await self._client.zrem(form.processing_key(queue), *members)]
            else:
                async with self._client.pipeline(transaction=False) as pipe:
                    for queue, members in groups.items():
                        pipe.zrem(form.processing_key(queue), *members)
                    removed = await pipe.execute()
        except _FAILURES as exc:
            raise self._error("ack", exc) from exc
        lost = len(deliveries) - sum(removed)
        if lost:
            logger.warning("ack: %d of %d leases were already lost", lost, len(deliveries))

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Put unfinished messages back at the front, in their order, their count undone.

        Raises:
            DriverError: Redis failed.

        """
        await self._grabs.settled()
        try:
            for queue, members in _group(deliveries).items():
                keys = [form.processing_key(queue), form.ready_key(queue)]
                await self._release(keys, members[::-1])
        except _FAILURES as exc:
            raise self._error("release", exc) from exc

    async def retry(self, delivery: Delivery, message: Outgoing) -> None:
        """Atomically remove the lease and store the next attempt (ready or delayed).

        If the lease was already lost, another consumer has the message: nothing is stored
        and a warning is logged.

        Raises:
            MessageTooLargeError: the new body is larger than ``max_message_bytes``.
            DriverError: Redis failed.

        """
        element = self._element(message)
        delay_ms = form.to_ms(message.delay_seconds) if message.delay_seconds > 0 else 0
        keys = [
            form.processing_key(delivery.queue),
            form.ready_key(message.queue),
            form.delayed_key(message.queue),
        ]
        await self._grabs.settled()
        try:
            stored = await self._retry(keys, [delivery.receipt, delay_ms, element])
        except _FAILURES as exc:
            raise self._error("retry", exc) from exc
        if not stored:
            logger.warning("retry: lease on queue %r was already lost; not stored", delivery.queue)

    async def dead_letter(self, delivery: Delivery, entry: DeadLetterEntry) -> None:
        """Atomically remove the lease and keep ``entry`` in ``queue:{name}:dead``.

        Raises:
            DriverError: Redis failed.

        """
        blob = pack_dead_entry(entry, form.lease_ms(delivery.receipt))
        keys = [form.processing_key(delivery.queue), form.dead_key(delivery.queue)]
        await self._grabs.settled()
        try:
            stored = await self._dead_letter(keys, [delivery.receipt, blob])
        except _FAILURES as exc:
            raise self._error("dead_letter", exc) from exc
        if not stored:
            logger.warning(
                "dead_letter: lease on queue %r was already lost; not stored", delivery.queue
            )

    async def extend(self, deliveries: Sequence[Delivery]) -> None:
        """Renew each held lease to server time + its visibility timeout; lost ones are logged.

        Raises:
            DriverError: Redis failed.

        """
        groups: dict[str, list[bytes | int]] = {}
        for delivery in deliveries:
            pair: list[bytes | int] = [
                form.to_ms(delivery.visibility_timeout_seconds),
                delivery.receipt,
            ]
            groups.setdefault(delivery.queue, []).extend(pair)
        renewed = 0
        try:
            for queue, args in groups.items():
                renewed += await self._extend([form.processing_key(queue)], args)
        except _FAILURES as exc:
            raise self._error("extend", exc) from exc
        if renewed < len(deliveries):
            self._lost_renewals.note(len(deliveries) - renewed, len(deliveries))

    async def maintain(self, queues: Sequence[str]) -> float | None:
        """Promote due delayed messages and recover expired leases, atomically per batch.

        Whichever workers run it at the same time, each message moves exactly once.

        Returns:
            Seconds until the earliest message still in a delayed set of ``queues`` is due
            (by the server's clock, at least 0.001), or ``None`` when none is delayed.

        Raises:
            DriverError: Redis failed, or a key holds another type (nothing moved).

        """
        soonest: float | None = None
        try:
            for queue in queues:
                keys = [
                    form.ready_key(queue),
                    form.processing_key(queue),
                    form.delayed_key(queue),
                    form.GRABS_KEY,
                ]
                while True:
                    promoted, recovered, next_due, now = await self._maintain(
                        keys, [lua.MAINTAIN_BATCH]
                    )
                    if recovered:
                        logger.info("recovered %d expired leases on queue %r", recovered, queue)
                    if max(promoted, recovered) < lua.MAINTAIN_BATCH:
                        break
                if next_due is not None:
                    wait = max(0.001, (float(next_due) - float(now)) / 1000)
                    soonest = wait if soonest is None else min(soonest, wait)
        except _FAILURES as exc:
            raise self._error("maintain", exc) from exc
        return soonest if soonest is None or soonest < float("inf") else None

    async def sizes(self, queue: str) -> QueueSizes:
        """Return ready, delayed, in-flight and dead-letter counts of ``queue`` (one round trip).

        Raises:
            DriverError: Redis failed.

        """
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.llen(form.ready_key(queue))
                pipe.zcard(form.delayed_key(queue))
                pipe.zcard(form.processing_key(queue))
                pipe.llen(form.dead_key(queue))
                ready, delayed, in_flight, dead = await pipe.execute()
        except _FAILURES as exc:
            raise self._error("sizes", exc) from exc
        return QueueSizes(ready, delayed, in_flight, dead)


def build(config: Config) -> RedisDriver:
    """Return an unopened Redis driver for ``config.redis``."""
    return RedisDriver(config.redis)
