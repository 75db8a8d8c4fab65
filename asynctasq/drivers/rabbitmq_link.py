"""The RabbitMQ driver's connection: channels, topology, confirmed publishing, errors.

One robust connection (aio-pika ``connect_robust``) per driver, with a client-provided
connection name so operators (and tests) can find it. Channels, each kept by a strong
reference (aio-pika holds robust channels only weakly, FIELD-CASES C32):

* ``publisher``: publisher confirms on, unroutable messages raise (``mandatory``);
* ``admin``: declarations, bindings and message counts;
* ``consumer`` (made by :mod:`~asynctasq.drivers.rabbitmq_consume`): consumers and acks.

Short jobs that may end in a channel error (a passive declaration of a missing queue, an
exclusive queue held elsewhere) use a plain, non-robust channel of their own
(:meth:`Link.raw_channel`), which nothing reopens or restores.

After a broker restart or a dropped connection aio-pika reconnects every
``reconnect_seconds``, reopens the channels, restores QoS, re-declares the exchange and
every queue declared here (robustly registered) and re-registers the consumers.

A publish to a queue that does not exist (deleted by an operator) comes back unroutable;
the queue's topology is then declared again and the message published once more.

A dropped connection is logged once (``rabbitmq connection lost``), and its return
(``rabbitmq connection back after N s``); aio-pika's and aiormq's own lines in between are
quieted by :mod:`rabbitmq_quiet`. A timed-out call says what it waited for (the connection,
or the publisher confirms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq.abc
from aio_pika.abc import (
    AbstractExchange,
    AbstractRobustChannel,
    AbstractRobustConnection,
    ExchangeType,
)
from aio_pika.connection import make_url
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, ChannelNotFoundEntity, PublishError
from aiormq.exceptions import InvalidFrameError

from asynctasq.config.mask import scrub
from asynctasq.config.records import RabbitMQConfig
from asynctasq.drivers import rabbitmq_format as form
from asynctasq.drivers import rabbitmq_quiet as quiet
from asynctasq.drivers import rabbitmq_records as rec
from asynctasq.errors import ConfigError, DriverError

logger = logging.getLogger("asynctasq.drivers.rabbitmq")

FAILURES: tuple[type[BaseException], ...] = (*CONNECTION_EXCEPTIONS, TimeoutError)
"""What aio-pika, aiormq and the socket raise; translated to ``DriverError`` at the edge."""

CLOSE_SECONDS = 5.0
"""The longest closing the connection may take (the broker may not answer)."""

MIN_SERVER_VERSION = (3, 8)
"""SPEC §5: RabbitMQ 3.8 or newer."""


def server_version(properties: object) -> tuple[int, ...]:
    """Return the broker version from its ``server_properties`` (``()`` if unknown)."""
    raw = properties.get("version", b"") if isinstance(properties, dict) else b""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


async def _close_quietly(connection: AbstractRobustConnection) -> None:
    """Close ``connection`` and stop its reconnection task, ignoring broker errors."""
    with contextlib.suppress(*FAILURES):
        await asyncio.shield(connection.close())


class Link:
    """The connection, its channels and the topology of every queue used so far.

    Args:
        config: the ``rabbitmq`` group (url, exchange_name; the rest is read elsewhere).
        connection_name: shown by ``rabbitmqctl list_connections client_properties``.
        reconnect_seconds: pause between reconnection attempts after a connection loss.
        operation_timeout_seconds: the longest one broker call (or waiting for the
            connection to come back first) may take before ``DriverError``.

    """

    def __init__(
        self,
        config: RabbitMQConfig,
        *,
        connection_name: str,
        reconnect_seconds: float,
        operation_timeout_seconds: float,
    ) -> None:
        self.config = config
        self.connection_name = connection_name
        self.timeout_seconds = operation_timeout_seconds
        self._reconnect_seconds = reconnect_seconds
        self._secrets = [urlsplit(config.url).password or ""]
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._admin: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._ensured: set[str] = set()
        self._ensure_lock = asyncio.Lock()
        self._lost_at: float | None = None
        self.on_declared: Callable[[str], Awaitable[None]] | None = None
        """Awaited with the queue name each time :meth:`ensure` declared a topology; it must
        not raise (the queue catalog records the name)."""

    def detail(self, exc: BaseException) -> str:
        """Return ``"Type: message"`` for ``exc`` with every password removed.

        A bare ``TimeoutError`` (an operation timed out) reads
        ``"TimeoutError: no answer from the broker within 30 s"``.
        """
        if isinstance(exc, TimeoutError) and not str(exc):
            text = f"no answer from the broker within {self.timeout_seconds:g} s"
        else:
            text = str(exc) or repr(exc)
        return scrub(f"{type(exc).__name__}: {text}", self._secrets)

    def error(self, operation: str, exc: BaseException) -> DriverError:
        """Return ``DriverError`` for ``exc`` with every password removed."""
        return DriverError("rabbitmq", operation, self.detail(exc))

    @property
    def connection(self) -> AbstractRobustConnection:
        """The open connection. Raises DriverError before ``open`` or after ``close``."""
        if self._connection is None:
            raise DriverError("rabbitmq", "use", "the driver is not open")
        return self._connection

    async def open(self) -> None:
        """Connect, open the publisher and admin channels, declare the exchange.

        Raises:
            DriverError: the broker cannot be reached, refuses the login, or is older than 3.8.

        """
        connection = aio_pika.RobustConnection(
            make_url(self.config.url),
            client_properties={"connection_name": self.connection_name},
            reconnect_interval=self._reconnect_seconds,
            fail_fast=True,
        )
        quiet.install()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await connection.connect(timeout=self.timeout_seconds)
        except BaseException as exc:
            # Closing cancels the robust connection's reconnection task, which would
            # otherwise outlive the error (it ignores the cancel of a timed-out connect)
            # and keep the process from exiting.
            await _close_quietly(connection)
            if isinstance(exc, FAILURES):
                raise self._open_error(exc) from exc
            raise
        self._connection = connection
        connection.close_callbacks.add(self._on_lost)
        connection.reconnect_callbacks.add(self._on_back)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._check_version(connection)
                self._publisher = await connection.channel(on_return_raises=True)
                self._admin = await connection.channel(publisher_confirms=False)
                await self._admin.declare_exchange(
                    self.config.exchange_name, ExchangeType.DIRECT, durable=True
                )
                self._exchange = await self._publisher.get_exchange(
                    self.config.exchange_name, ensure=False
                )
        except BaseException as exc:
            await self.close()
            if isinstance(exc, FAILURES):
                raise self.error("open", exc) from exc
            raise

    def _open_error(self, exc: BaseException) -> DriverError:
        """Return the ``DriverError`` of a failed connect, saying what went wrong."""
        where = urlsplit(self.config.url)
        if isinstance(exc, TimeoutError) and not str(exc):
            return DriverError(
                "rabbitmq",
                "open",
                f"no answer from {where.hostname}:{where.port or 5672} within "
                f"{self.timeout_seconds:g} s (TCP connect and AMQP handshake)",
            )
        if isinstance(exc, InvalidFrameError) and "Connection.Close" in str(exc):
            # The broker closes the connection instead of answering connection.open: it
            # refused the vhost (missing, or no permission); aiormq keeps no reply text.
            vhost = unquote(where.path[1:]) or "/"
            return DriverError(
                "rabbitmq",
                "open",
                f"vhost {vhost!r} refused by the broker: it does not exist or user "
                f"{where.username or 'guest'!r} has no permission on it (rabbitmqctl "
                "list_vhosts, rabbitmqctl list_permissions -p <vhost>)",
            )
        return self.error("open", exc)

    def _on_lost(self, connection: object, exc: BaseException | None = None) -> None:
        """Log once that the connection dropped (aio-pika reconnects on its own)."""
        if self._connection is None or self._lost_at is not None:
            return  # closed by us, or already reported
        self._lost_at = time.monotonic()
        reason = "" if exc is None or isinstance(exc, asyncio.CancelledError) else self.detail(exc)
        logger.warning(
            "rabbitmq connection lost%s; reconnecting every %g s (aio-pika's and aiormq's "
            "repeated lines are not shown until it is back)",
            f" ({reason})" if reason else "",
            self._reconnect_seconds,
        )

    def _on_back(self, connection: object) -> None:
        """Log that the connection is back; let the libraries report the next outage."""
        quiet.QUIET.reset()
        lost_at, self._lost_at = self._lost_at, None
        if lost_at is not None:
            logger.warning("rabbitmq connection back after %.1f s", time.monotonic() - lost_at)

    async def _check_version(self, connection: AbstractRobustConnection) -> None:
        transport = connection.transport
        properties = transport.connection.server_properties if transport else {}
        version = server_version(properties)
        if version and version < MIN_SERVER_VERSION:
            raise DriverError(
                "rabbitmq",
                "open",
                f"RabbitMQ {'.'.join(map(str, version))} is too old; 3.8 or newer is needed",
            )

    async def close(self) -> None:
        """Close the connection and every channel (idempotent; at most :data:`CLOSE_SECONDS`).

        aiormq waits up to 2 s for the broker's close-ok; a broker that does not answer
        costs that, and the socket is closed anyway.
        """
        connection, self._connection = self._connection, None
        self._publisher = self._admin = self._exchange = None
        self._ensured.clear()
        if connection is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_SECONDS):
                    await _close_quietly(connection)

    @property
    def connected(self) -> bool:
        """True while the connection is up (not closed, not reconnecting)."""
        return self._connection is not None and self._connection.connected.is_set()

    @property
    def admin(self) -> AbstractRobustChannel:
        """The channel for declarations and counts."""
        if self._admin is None:
            raise DriverError("rabbitmq", "use", "the driver is not open")
        return self._admin

    async def ready(self) -> None:
        """Wait (bounded by the operation timeout) until the connection is up.

        Raises:
            TimeoutError: the connection did not come back in time (the message says so).

        """
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self.connection.ready()
                if self._publisher is not None:
                    await self._publisher.ready()  # reopened after a channel error, if need be
        except TimeoutError as exc:
            raise TimeoutError(self._waited("the connection to come back")) from exc

    def _waited(self, what: str) -> str:
        """Return ``"waited 30 s for <what>"`` with the operation timeout."""
        return f"waited {self.timeout_seconds:g} s for {what}"

    @contextlib.asynccontextmanager
    async def _confirming(self) -> AsyncIterator[None]:
        """Bound a publish by the operation timeout; a timeout says what it waited for.

        Raises:
            TimeoutError: ``"waited 30 s for the connection to come back"`` (it is down)
                or ``"waited 30 s for the broker's publisher confirms"`` (it is up, or
                looks up: a broker that stopped answering is noticed only after the
                heartbeat timeout).

        """
        try:
            async with asyncio.timeout(self.timeout_seconds):
                yield
        except TimeoutError as exc:
            if str(exc):
                raise
            if self.connected:
                raise TimeoutError(self._waited("the broker's publisher confirms")) from exc
            raise TimeoutError(self._waited("the connection to come back")) from exc

    async def ensure(self, queue: str) -> None:
        """Declare ``queue``, its delayed and dead-letter queues, bound by name (once).

        Raises:
            ConfigError: ``queue`` is a name the driver or RabbitMQ keeps for itself.
            DriverError: a queue exists with other arguments, or the broker failed.

        """
        if queue in self._ensured:
            return
        self.check_queue(queue)
        async with self._ensure_lock:
            if queue in self._ensured:
                return
            try:
                async with asyncio.timeout(self.timeout_seconds):
                    exchange = self.config.exchange_name
                    names = (queue, form.delayed_name(queue), form.dead_name(queue))
                    for name in names:
                        arguments = form.MAIN_ARGUMENTS if name == queue else None
                        declared = await self.admin.declare_queue(
                            name, durable=True, arguments=arguments
                        )
                        await declared.bind(exchange, name)
            except FAILURES as exc:
                raise DriverError(
                    "rabbitmq",
                    "declare",
                    f"queue {queue!r} (durable; ready queue with x-max-priority=1): "
                    + self.detail(exc),
                ) from exc
            self._ensured.add(queue)
            if self.on_declared is not None:
                await self.on_declared(queue)

    def check_queue(self, queue: str) -> None:
        """Raise ``ConfigError`` if ``queue`` cannot be a task queue here.

        See :func:`~asynctasq.drivers.rabbitmq_records.queue_name_problem`.
        """
        problem = rec.queue_name_problem(queue, self.config.exchange_name)
        if problem is not None:
            raise ConfigError(f"queue {queue!r} cannot be used with the RabbitMQ driver: {problem}")

    def forget(self, queue: str) -> None:
        """Declare ``queue``'s topology again on its next use (it was found missing)."""
        self._ensured.discard(queue)

    async def count(self, name: str) -> int:
        """Return how many ready messages queue ``name`` holds (it must exist)."""
        channel = await self.admin.get_underlay_channel()
        declared = await channel.queue_declare(name, passive=True, timeout=self.timeout_seconds)
        return int(declared.message_count or 0)

    async def publish(
        self, messages: Sequence[tuple[str, str, aio_pika.Message]], *, again: bool = True
    ) -> None:
        """Publish ``(queue, routing key, message)`` triples and wait for every confirm.

        Each queue's topology is declared first (once per driver). All messages are sent
        before any confirm is awaited, so a batch costs about one round trip. Messages the
        broker could not route (their queue was deleted), or refused because the exchange
        is gone, are declared and published once more (``again``).

        Raises:
            Exception: what aio-pika raised (the caller translates it).

        """
        for queue in dict.fromkeys(queue for queue, _, _ in messages):
            await self.ensure(queue)
        async with self._confirming():
            await self.ready()
            results = await asyncio.gather(
                *(self._send(key, message) for _, key, message in messages),
                return_exceptions=True,
            )
        failed = []
        for triple, result in zip(messages, results, strict=True):
            if isinstance(result, PublishError | ChannelNotFoundEntity) and again:
                failed.append(triple)
            elif isinstance(result, BaseException):
                raise result
        if failed:
            logger.warning("%d messages found no queue or exchange; declaring again", len(failed))
            if any(isinstance(result, ChannelNotFoundEntity) for result in results):
                await self._redeclare_exchange()
            for queue in {queue for queue, _, _ in failed}:
                self.forget(queue)
            await self.publish(failed, again=False)

    async def _redeclare_exchange(self) -> None:
        """Declare the exchange again (an operator deleted it) and every queue's bindings."""
        async with asyncio.timeout(self.timeout_seconds):
            await self.ready()
            await self.admin.declare_exchange(
                self.config.exchange_name, ExchangeType.DIRECT, durable=True
            )
        self._ensured.clear()

    async def publish_direct(
        self, name: str, messages: Sequence[aio_pika.Message]
    ) -> list[aio_pika.Message]:
        """Publish ``messages`` to queue ``name`` through the default exchange, confirmed.

        Returns:
            The messages that came back unroutable (queue ``name`` does not exist).

        Raises:
            Exception: what aio-pika raised otherwise (the caller translates it).

        """
        async with self._confirming():
            await self.ready()
            if self._publisher is None:
                raise DriverError("rabbitmq", "publish", "the driver is not open")
            exchange = self._publisher.default_exchange
            results = await asyncio.gather(
                *(exchange.publish(message, name, mandatory=True) for message in messages),
                return_exceptions=True,
            )
        returned = []
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, PublishError):
                returned.append(message)
            elif isinstance(result, BaseException):
                raise result
        return returned

    async def _send(self, routing_key: str, message: aio_pika.Message) -> None:
        exchange = self._exchange
        if exchange is None or self._publisher is None:
            raise DriverError("rabbitmq", "publish", "the driver is not open")
        await exchange.publish(message, routing_key, mandatory=True)

    @contextlib.asynccontextmanager
    async def temporary_channel(self, prefetch_count: int) -> AsyncIterator[AbstractRobustChannel]:
        """Open a channel for one job; closing it returns every message it left unacked.

        Args:
            prefetch_count: QoS of the channel's consumers (0: unlimited).

        """
        await self.ready()
        channel = await self.connection.channel(publisher_confirms=False)
        try:
            await channel.set_qos(prefetch_count=prefetch_count)
            yield channel
        finally:
            with contextlib.suppress(*FAILURES):
                await channel.close()

    @contextlib.asynccontextmanager
    async def raw_channel(self) -> AsyncIterator[aiormq.abc.AbstractChannel]:
        """Open a plain aiormq channel for one short job (never reopened nor restored).

        A broker error closes it (AMQP channel errors do); closing it returns every message
        it left unacked, in their places.

        Raises:
            Exception: what aiormq raised (the caller translates it).

        """
        await self.ready()
        transport = self.connection.transport
        if transport is None:
            raise ConnectionError("the connection is not up")
        channel = await transport.connection.channel(
            publisher_confirms=False, timeout=self.timeout_seconds
        )
        try:
            yield channel
        finally:
            with contextlib.suppress(*FAILURES):
                await channel.close()
