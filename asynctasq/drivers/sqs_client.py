"""The SQS driver's connection: one aioboto3 client per opened driver, queue URLs, errors.

* Client lifetime: ``open()`` enters ``session.client("sqs")`` (an async context manager)
  in an ``AsyncExitStack``; ``close()`` leaves it (so does the end of ``asyncio.run()``
  for a driver never closed). One client (one connection pool of ``pool_size``) serves
  every call of the driver.
* Credentials: ``aws_access_key_id`` / ``aws_secret_access_key`` when both are set, else
  boto's default chain (environment, shared files, instance role). They are never logged:
  every error text passes through :func:`~asynctasq.config.mask.scrub`.
* Queue URLs: ``queue_url_prefix + name`` exactly (a prefix such as ``.../123456789012/app-``
  also works); the dead-letter queue is ``name + "_dead"``, the completed-task records
  ``name + "_completed"``, the worker registry ``asynctasq-workers`` (side queues: no task
  runs from them; :meth:`SQSConnection.queue_of` maps them back).
* Missing queues: with ``create_queues`` (default true) a call that meets a missing queue
  creates it (a task queue with its dead-letter queue) and is made once more; created
  queues keep messages 14 days (the SQS maximum), completed-task queues one hour.
  Otherwise the call fails naming the URL.
* Retries: botocore's "standard" retry mode (4 attempts, backoff with jitter) for throttling
  and connection errors; what still fails becomes :class:`~asynctasq.errors.DriverError`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from asynctasq.config.mask import scrub
from asynctasq.config.records import SQSConfig
from asynctasq.drivers import sqs_logs
from asynctasq.drivers.sqs_format import MAX_WAIT_SECONDS
from asynctasq.errors import ConfigError, DriverError

logger = logging.getLogger("asynctasq.drivers.sqs")

DEAD_SUFFIX = "_dead"
COMPLETED_SUFFIX = "_completed"
MAX_NAME_LENGTH = 80
"""Longest SQS queue name. Source: SQS "CreateQueue"."""
REGISTRY_QUEUE = "asynctasq-workers"
"""The queue whose tags are the worker registry (it never holds a message)."""
MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
RETENTION_SECONDS = 14 * 24 * 3600
"""Retention of queues the driver creates: the SQS maximum. Source: SQS "CreateQueue"."""

COMPLETED_RETENTION_SECONDS = 3600
"""Retention of the ``_completed`` queues the driver creates: records older are dropped."""

FAILURES = (ClientError, BotoCoreError, OSError)


def error_code(exc: BaseException) -> str:
    """Return the SQS error code of a ``ClientError`` (``""`` for other exceptions)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


_COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
]


class SQSConnection:
    """The client, the queue URLs and error translation of one SQS driver.

    Args:
        config: the ``sqs`` group.
        pool_size: the most HTTP connections the client keeps (``max_pool_connections``).

    """

    def __init__(self, config: SQSConfig, *, pool_size: int) -> None:
        self.prefix = config.queue_url_prefix or ""
        self.create_queues = config.create_queues
        self._config = config
        self._pool_size = pool_size
        self._secrets = [config.aws_access_key_id or "", config.aws_secret_access_key or ""]
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    def url(self, queue: str) -> str:
        """Return the URL of queue ``queue``.

        Raises:
            ConfigError: the SQS name of ``queue`` or of its side queues (``_dead``,
                ``_completed``) would exceed :data:`MAX_NAME_LENGTH` characters.

        """
        url = self.prefix + queue
        name = url.rsplit("/", 1)[-1]
        if len(name) + len(COMPLETED_SUFFIX) > MAX_NAME_LENGTH:
            raise ConfigError(
                f"queue {queue!r}: its SQS name {name!r} is {len(name)} characters; SQS names "
                f"hold at most {MAX_NAME_LENGTH}, and {name + COMPLETED_SUFFIX!r} must fit too "
                f"(at most {MAX_NAME_LENGTH - len(COMPLETED_SUFFIX)} for the queue's own name)"
            )
        return url

    def dead_url(self, queue: str) -> str:
        """Return the URL of the dead-letter queue of ``queue``."""
        return self.prefix + queue + DEAD_SUFFIX

    def completed_url(self, queue: str) -> str:
        """Return the URL of the completed-task queue of ``queue``."""
        return self.prefix + queue + COMPLETED_SUFFIX

    def registry_url(self) -> str:
        """Return the URL of the worker-registry queue."""
        return self.prefix + REGISTRY_QUEUE

    @property
    def name_prefix(self) -> str:
        """The part of every queue name the prefix fixes (after its last ``/``), e.g. ``app-``."""
        return self.prefix.rpartition("/")[2]

    def queue_of(self, name: str) -> str | None:
        """Return the task queue an SQS queue ``name`` (full name) belongs to.

        ``app-emails`` and ``app-emails_dead`` give ``emails`` (with prefix ``.../app-``);
        the registry queue, and names outside the prefix, give ``None``.
        """
        if not name.startswith(self.name_prefix):
            return None
        queue = name[len(self.name_prefix) :]
        if queue == REGISTRY_QUEUE:
            return None
        for suffix in (DEAD_SUFFIX, COMPLETED_SUFFIX):
            if queue.endswith(suffix) and len(queue) > len(suffix):
                return queue.removesuffix(suffix)
        return queue or None

    async def queue_names(self) -> list[str]:
        """Return the task queues with a queue under the prefix (``ListQueues``), sorted.

        Side queues count for their task queue (``emails_dead`` lists ``emails``); the
        registry queue is left out.

        Raises:
            DriverError: SQS failed (e.g. ``sqs:ListQueues`` is denied).

        """
        client = await self.client()
        names: set[str] = set()
        params: dict[str, Any] = {"MaxResults": 1000}
        if self.name_prefix:
            params["QueueNamePrefix"] = self.name_prefix
        try:
            while True:
                response = await client.list_queues(**params)
                for url in response.get("QueueUrls", []):
                    queue = self.queue_of(str(url).rpartition("/")[2])
                    if queue is not None:
                        names.add(queue)
                token = response.get("NextToken")
                if not token:
                    break
                params["NextToken"] = token
        except FAILURES as exc:
            raise self.error("queue_names", exc) from exc
        return sorted(names)

    def _creates(self, url: str) -> list[tuple[str, int]]:
        """Return the queues (URL, retention seconds) a missing ``url`` is created with."""
        if url.endswith(COMPLETED_SUFFIX):
            return [(url, COMPLETED_RETENTION_SECONDS)]
        if url.endswith(DEAD_SUFFIX) or url == self.registry_url():
            return [(url, RETENTION_SECONDS)]
        return [(url, RETENTION_SECONDS), (url + DEAD_SUFFIX, RETENTION_SECONDS)]

    def error(self, operation: str, exc: BaseException) -> DriverError:
        """Return ``exc`` as a ``DriverError`` for ``operation``, with credentials removed."""
        detail = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
        if type(exc).__name__ == "NoCredentialsError":
            detail += (
                " (set sqs.aws_access_key_id and sqs.aws_secret_access_key, or configure "
                "boto's default credential chain)"
            )
        return DriverError("sqs", operation, detail)

    async def open(self) -> None:
        """Create the client and check that the endpoint answers (idempotent).

        Raises:
            DriverError: the endpoint cannot be reached, or no credentials were found.

        """
        if self._client is not None:
            return
        sqs_logs.install()
        config = self._config
        keys: dict[str, str] = {}
        if config.aws_access_key_id and config.aws_secret_access_key:
            keys = {
                "aws_access_key_id": config.aws_access_key_id,
                "aws_secret_access_key": config.aws_secret_access_key,
            }
        session = aioboto3.Session(region_name=config.region_name, **keys)
        client_config = AioConfig(
            max_pool_connections=self._pool_size,
            connect_timeout=10,
            read_timeout=MAX_WAIT_SECONDS + 20,
            retries={"mode": "standard", "max_attempts": 4},
        )
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                session.client("sqs", endpoint_url=config.endpoint_url, config=client_config)
            )
            await client.list_queues(QueueNamePrefix="asynctasq-probe", MaxResults=1)
        except ClientError as exc:
            if error_code(exc) not in {"AccessDenied", "AccessDeniedException"}:
                await stack.aclose()
                raise self.error("open", exc) from exc
        except FAILURES as exc:
            await stack.aclose()
            raise self.error("open", exc) from exc
        # a handle that was never closed closes its drivers as its event loop ends
        # (asynctasq.handle), so a short dispatching script leaves no unclosed session
        self._stack, self._client = stack, client

    async def close(self) -> None:
        """Close the client and its connections (idempotent)."""
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def client(self) -> Any:
        """Return the client, opening the connection first if needed."""
        if self._client is None:
            await self.open()
        return self._client

    async def counts(self, operation: str, url: str) -> tuple[int, int, int]:
        """Return SQS' approximate (ready, delayed, in flight) counts of the queue at ``url``.

        A missing queue counts (0, 0, 0).

        Raises:
            DriverError: SQS failed.

        """
        response = await self.call(
            operation, "get_queue_attributes", url, missing_ok=True, AttributeNames=_COUNTS
        )
        found: dict[str, Any] = {} if response is None else response.get("Attributes", {})
        ready, delayed, in_flight = (int(found.get(name, 0)) for name in _COUNTS)
        return ready, delayed, in_flight

    async def call(
        self, operation: str, method: str, url: str, *, missing_ok: bool = False, **params: Any
    ) -> Any:
        """Call ``client.<method>(QueueUrl=url, **params)``; create a missing queue first.

        Args:
            operation: the driver operation, for errors (e.g. ``"enqueue"``).
            method: the client method, e.g. ``"send_message"``.
            url: the queue URL.
            missing_ok: return ``None`` for a missing queue instead of creating it.
            params: the call's other arguments.

        Returns:
            The response mapping (``None`` for a missing queue with ``missing_ok``).

        Raises:
            DriverError: the call failed, or the queue is missing and may not be created.

        """
        client = await self.client()
        try:
            try:
                return await getattr(client, method)(QueueUrl=url, **params)
            except ClientError as exc:
                if error_code(exc) not in MISSING_QUEUE_CODES:
                    raise
                if missing_ok:
                    return None
                await self.create(operation, url)
            try:
                return await getattr(client, method)(QueueUrl=url, **params)
            except ClientError as exc:
                if error_code(exc) not in MISSING_QUEUE_CODES:
                    raise
                raise DriverError(
                    "sqs",
                    operation,
                    f"queue {url!r} still does not exist after it was created: "
                    f"queue_url_prefix {self.prefix!r} does not match the account and region "
                    "of the credentials (or the endpoint)",
                ) from exc
        except FAILURES as exc:
            raise self.error(operation, exc) from exc

    async def create(self, operation: str, url: str) -> None:
        """Create the queue at ``url`` (a task queue with its dead-letter queue) if allowed.

        Raises:
            DriverError: creating is not allowed, or failed.

        """
        creates = self._creates(url)
        if not self.create_queues:
            also = f" (and its '{DEAD_SUFFIX}' dead-letter queue)" if len(creates) > 1 else ""
            raise DriverError(
                "sqs",
                operation,
                f"queue {url!r} does not exist; create it{also} or set "
                "ASYNCTASQ_SQS_CREATE_QUEUES=true",
            )
        client = await self.client()
        for target, retention in creates:
            name = target.rsplit("/", 1)[-1]
            attributes = {"MessageRetentionPeriod": str(retention)}
            response = await client.create_queue(QueueName=name, Attributes=attributes)
            logger.info("created SQS queue %s", response.get("QueueUrl", name))
