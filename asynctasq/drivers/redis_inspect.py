"""The Redis driver's optional protocols: dead letters, queue names, workers, completed tasks.

A mixin of :class:`~asynctasq.drivers.redis.RedisDriver` (which provides the client, the
element ids and the error translation); none of it is on a task's hot path but
``keep_completed`` (one pipelined ``LPUSH`` + ``LTRIM`` per queue and ack batch, only with
``repository.keep_completed_tasks``). Key layout: :mod:`asynctasq.drivers.redis_format`.

* Dead letters: ``queue:{name}:dead``, requeued atomically per entry (``LREM`` + ``LPUSH``
  in one script), with the body optionally rewritten by the caller first.
* Queue names: names ending in a key suffix are refused (:meth:`RedisInspection.check_queues`);
  the catalog is a ``SCAN`` over ``queue:*`` (cost grows with the database's key count; the
  CLI calls it once per ``asynctasq stats`` without ``--queues``).
* Workers: the hash ``asynctasq:workers``, stamped with the server's clock, so machines with
  skewed clocks agree on who is live.
* Completed tasks: ``queue:{name}:completed``, newest first, capped at ``completed_limit``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from asynctasq.drivers import redis_format as form
from asynctasq.drivers import redis_scripts as lua
from asynctasq.drivers.dead_entry_format import unpack_dead_entry
from asynctasq.drivers.protocol import CompletedTask, DeadLetterEntry, WorkerInfo
from asynctasq.errors import ConfigError, DriverError

logger = logging.getLogger("asynctasq.drivers.redis")

_FAILURES = (RedisError, OSError)

DEFAULT_COMPLETED_LIMIT = 1000
"""Completed tasks kept per queue when ``repository.keep_completed_tasks`` is on."""


class RedisInspection:
    """Dead-letter, catalog, worker-registry and completed-task methods of the Redis driver.

    The class using it sets ``_client``, ``_ids``, ``completed_limit`` and ``_error`` and
    calls :meth:`_register_inspection_scripts` once.
    """

    _client: Redis
    _ids: form.ElementIds
    completed_limit: int

    def _error(self, operation: str, exc: BaseException) -> DriverError:
        raise NotImplementedError  # provided by the driver

    def _register_inspection_scripts(self) -> None:
        script = self._client.register_script
        self._requeue_dead = script(lua.REQUEUE_DEAD)
        self._purge_dead = script(lua.PURGE_DEAD)
        self._heartbeat = script(lua.HEARTBEAT)
        self._live_workers = script(lua.LIVE_WORKERS)

    async def _dead_blobs(
        self, queue: str, limit: int | None
    ) -> list[tuple[bytes, DeadLetterEntry, int]]:
        stop = -1 if limit is None else limit - 1
        try:
            blobs: list[Any] = await self._client.lrange(form.dead_key(queue), 0, stop)
        except _FAILURES as exc:
            raise self._error("dead_letters", exc) from exc
        found = []
        for blob in blobs:
            try:
                entry, vt_ms = unpack_dead_entry(blob)
            except ValueError as exc:
                logger.warning("skipping an unreadable dead letter on queue %r: %s", queue, exc)
                continue
            found.append((blob, entry, vt_ms))
        return found

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetterEntry]:
        """Return up to ``limit`` dead letters of ``queue``, oldest first.

        Raises:
            DriverError: Redis failed.

        """
        if limit <= 0:
            return []
        return [entry for _, entry, _ in await self._dead_blobs(queue, limit)]

    async def requeue_dead(
        self,
        queue: str,
        task_ids: Sequence[str] | None = None,
        *,
        rewrite: Callable[[bytes], bytes] | None = None,
    ) -> int:
        """Move dead letters (all, or those with the given task ids) to the back of the queue.

        Each entry is removed and its body (``rewrite(body)`` when given; an entry it raises
        for stays, logged) pushed in one atomic step, as a fresh message.

        Raises:
            DriverError: Redis failed.

        """
        wanted = None if task_ids is None else set(task_ids)
        args: list[bytes] = []
        for blob, entry, vt_ms in await self._dead_blobs(queue, None):
            if wanted is not None and entry.task_id not in wanted:
                continue
            try:
                body = entry.body if rewrite is None else rewrite(entry.body)
            except Exception as exc:
                logger.warning("requeue: dead letter %r kept: %s", entry.task_id, exc)
                continue
            args += [blob, self._ids.element(body, vt_ms / 1000)]
        moved = 0
        keys = [form.dead_key(queue), form.ready_key(queue)]
        try:
            for start in range(0, len(args), 2 * lua.MAINTAIN_BATCH):
                moved += await self._requeue_dead(
                    keys, args[start : start + 2 * lua.MAINTAIN_BATCH]
                )
        except _FAILURES as exc:
            raise self._error("requeue_dead", exc) from exc
        return moved

    async def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of ``queue``; return how many there were.

        Raises:
            DriverError: Redis failed.

        """
        try:
            purged: int = await self._purge_dead([form.dead_key(queue)])
        except _FAILURES as exc:
            raise self._error("purge_dead", exc) from exc
        return purged

    def check_queues(self, queues: Sequence[str]) -> None:
        """Refuse queue names this driver cannot use (checked at worker start and dispatch).

        Raises:
            ConfigError: a name ends in ``:processing``, ``:delayed``, ``:dead`` or
                ``:completed`` (:func:`~asynctasq.drivers.redis_format.queue_name_problem`).

        """
        problems = [
            f"{queue!r}: {problem}"
            for queue in queues
            if (problem := form.queue_name_problem(queue)) is not None
        ]
        if problems:
            raise ConfigError("queue names the Redis driver cannot use: " + "; ".join(problems))

    async def queue_names(self) -> list[str]:
        """Return the queues with any key (``SCAN`` over ``queue:*``), sorted.

        Raises:
            DriverError: Redis failed.

        """
        names: set[str] = set()
        try:
            async for key in self._client.scan_iter(match="queue:*", count=1000):
                text = key.decode() if isinstance(key, bytes) else str(key)
                name = form.queue_of(text)
                if name is not None:
                    names.add(name)
        except _FAILURES as exc:
            raise self._error("queue_names", exc) from exc
        return sorted(names)

    async def record_heartbeat(self, worker: WorkerInfo, *, ttl_seconds: float) -> None:
        """Store ``worker`` in ``asynctasq:workers``, stamped with the server time.

        Raises:
            DriverError: Redis failed.

        """
        args: list[str | int | bytes] = [
            worker.worker_id,
            form.to_ms(ttl_seconds),
            form.pack_worker(worker),
        ]
        try:
            await self._heartbeat([form.WORKERS_KEY], args)
        except _FAILURES as exc:
            raise self._error("record_heartbeat", exc) from exc

    async def remove_worker(self, worker_id: str) -> None:
        """Remove ``worker_id`` from ``asynctasq:workers``.

        Raises:
            DriverError: Redis failed.

        """
        try:
            await self._client.hdel(form.WORKERS_KEY, worker_id)
        except _FAILURES as exc:
            raise self._error("remove_worker", exc) from exc

    async def live_workers(self) -> list[WorkerInfo]:
        """Return the workers within their ttl (server time), by worker id.

        Raises:
            DriverError: Redis failed.

        """
        try:
            values: list[bytes] = await self._live_workers([form.WORKERS_KEY])
        except _FAILURES as exc:
            raise self._error("live_workers", exc) from exc
        workers = []
        for value in values:
            try:
                workers.append(form.unpack_worker(value))
            except ValueError as exc:
                logger.warning("skipping an unreadable worker record: %s", exc)
        return sorted(workers, key=lambda w: w.worker_id)

    async def keep_completed(self, tasks: Sequence[CompletedTask]) -> None:
        """Push ``tasks`` on their queues' completed lists, each trimmed to ``completed_limit``.

        Raises:
            DriverError: Redis failed.

        """
        groups: dict[str, list[bytes]] = {}
        for task in tasks:
            groups.setdefault(form.completed_key(task.queue), []).append(form.pack_completed(task))
        if not groups:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, values in groups.items():
                    pipe.lpush(key, *values)
                    pipe.ltrim(key, 0, self.completed_limit - 1)
                await pipe.execute()
        except _FAILURES as exc:
            raise self._error("keep_completed", exc) from exc

    async def completed_tasks(self, queue: str, *, limit: int = 100) -> list[CompletedTask]:
        """Return up to ``limit`` kept completed tasks of ``queue``, newest first.

        Raises:
            DriverError: Redis failed.

        """
        if limit <= 0:
            return []
        try:
            values: list[Any] = await self._client.lrange(form.completed_key(queue), 0, limit - 1)
        except _FAILURES as exc:
            raise self._error("completed_tasks", exc) from exc
        found = []
        for value in values:
            try:
                found.append(form.unpack_completed(value))
            except ValueError as exc:
                logger.warning("skipping an unreadable completed task on %r: %s", queue, exc)
        return found

    async def completed_count(self, queue: str) -> int:
        """Return how many completed tasks of ``queue`` are kept.

        Raises:
            DriverError: Redis failed.

        """
        try:
            count: int = await self._client.llen(form.completed_key(queue))
        except _FAILURES as exc:
            raise self._error("completed_count", exc) from exc
        return count
