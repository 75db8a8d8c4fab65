"""The SQS worker registry: one tag per live worker on the queue ``asynctasq-workers``.

SQS has no key-value store; a queue's tags are the one small, readable, writable map it
offers (``TagQueue`` sets or replaces, ``ListQueueTags`` reads, ``UntagQueue`` removes).
The registry queue (``queue_url_prefix + "asynctasq-workers"``) never holds a message; it is
created on the first heartbeat when ``create_queues`` is on. Format of a tag:
:mod:`asynctasq.drivers.sqs_records`.

Limits, from SQS itself:

* at most :data:`~asynctasq.drivers.sqs_records.TAGS_MAX` (50) tags per queue, so at most
  50 workers are listed (fewer if you tag the registry queue yourself); a heartbeat beyond
  that fails (logged by the worker, which keeps running);
* the times are the workers' own clocks (SQS has no clock to read): keep them in sync;
* tagging calls count against an account-wide quota (tens per second): each worker makes
  one ``TagQueue`` call per heartbeat, plus a ``ListQueueTags`` on its first;
* a worker that died without stopping keeps its tag until the next first heartbeat of
  another worker or the next :meth:`WorkerTags.live` removes it (both drop expired tags).

Permissions: ``sqs:TagQueue``, ``sqs:UntagQueue``, ``sqs:ListQueueTags`` on that queue.
"""

from __future__ import annotations

import logging
import time

from asynctasq.drivers import sqs_records as records
from asynctasq.drivers.protocol import WorkerInfo
from asynctasq.drivers.sqs_client import SQSConnection, error_code
from asynctasq.errors import DriverError

logger = logging.getLogger("asynctasq.drivers.sqs")


def _refused(cause: BaseException | None) -> bool:
    """Return whether SQS refused the tag itself (not throttling, access or the network)."""
    code = error_code(cause) if cause is not None else ""
    return code.startswith("InvalidParameter") or "Tag" in code or "Limit" in code


class WorkerTags:
    """The worker registry of one driver.

    Args:
        conn: the driver's connection.

    """

    def __init__(self, conn: SQSConnection) -> None:
        self._conn = conn
        self._pruned = False

    async def _read(self, operation: str) -> tuple[list[WorkerInfo], list[str]]:
        """Return the live workers and the keys of expired (or unreadable) worker tags."""
        response = await self._conn.call(
            operation, "list_queue_tags", self._conn.registry_url(), missing_ok=True
        )
        tags: dict[str, str] = {} if response is None else dict(response.get("Tags") or {})
        now = time.time()
        live: list[WorkerInfo] = []
        stale: list[str] = []
        for key, value in tags.items():
            if not key.startswith(records.TAG_PREFIX):
                continue
            try:
                worker, expires = records.unpack_worker(key, value)
            except ValueError as exc:
                logger.warning("skipping an unreadable worker tag %r: %s", key, exc)
                stale.append(key)
                continue
            if expires > now:
                live.append(worker)
            else:
                stale.append(key)
        return sorted(live, key=lambda w: w.worker_id), stale

    async def _untag(self, operation: str, keys: list[str]) -> None:
        url = self._conn.registry_url()
        for start in range(0, len(keys), records.TAGS_MAX):
            part = keys[start : start + records.TAGS_MAX]
            await self._conn.call(operation, "untag_queue", url, missing_ok=True, TagKeys=part)

    async def record(self, worker: WorkerInfo, ttl_seconds: float) -> None:
        """Tag the registry queue with ``worker``, stamped now (this machine's clock).

        The first call of a driver also removes expired worker tags.

        Raises:
            DriverError: SQS failed, e.g. the queue already has 50 tags.

        """
        if not self._pruned:
            _, stale = await self._read("record_heartbeat")
            await self._untag("record_heartbeat", stale)
            self._pruned = True
        key = records.tag_key(worker.worker_id)
        tag = {key: records.pack_worker(worker, time.time(), ttl_seconds)}
        url = self._conn.registry_url()
        try:
            await self._conn.call("record_heartbeat", "tag_queue", url, Tags=tag)
        except DriverError as exc:
            if not _refused(exc.__cause__):
                raise
            detail = str(exc).split(" failed: ", 1)[-1]
            raise DriverError(
                "sqs",
                "record_heartbeat",
                f"{detail} (the worker registry is one tag per worker on {url!r}; SQS keeps "
                f"at most {records.TAGS_MAX} tags per queue)",
            ) from exc

    async def remove(self, worker_id: str) -> None:
        """Remove ``worker_id``'s tag (nothing if it has none).

        Raises:
            DriverError: SQS failed.

        """
        await self._untag("remove_worker", [records.tag_key(worker_id)])

    async def live(self) -> list[WorkerInfo]:
        """Return the workers whose ttl has not passed, by worker id; drop expired tags.

        Dropping is best effort: a caller allowed to read tags but not to remove them still
        gets the list.

        Raises:
            DriverError: SQS failed to list the tags.

        """
        workers, stale = await self._read("live_workers")
        try:
            await self._untag("live_workers", stale)
        except DriverError as exc:
            logger.debug("could not remove expired worker tags: %s", exc)
        return workers
