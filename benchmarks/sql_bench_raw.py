"""Raw ceilings for ``sql_bench.py``: the same database client doing the bare queue moves.

On the driver's own migrated table (same columns and indexes), with no queue library in
between, one connection:

PostgreSQL claims and deletes commit without waiting for the WAL flush, as the driver's do
(``queries/postgres.sql``); inserts wait for it, as the driver's enqueue does.

* :func:`claim_delete_rate` — fill the table with ``count`` rows (untimed), then claim 100
  at a time (PostgreSQL ``UPDATE ... RETURNING`` over ``FOR UPDATE SKIP LOCKED``; MySQL
  ``SELECT ... FOR UPDATE SKIP LOCKED`` + ``UPDATE`` in a transaction; SQLite ``UPDATE ...
  RETURNING`` in ``BEGIN IMMEDIATE``) and delete the batch: rows per second;
* :func:`notify_handover_ms` — PostgreSQL only: a paced ``INSERT`` + ``pg_notify`` seen by
  another connection blocked in ``LISTEN`` that then claims the row: milliseconds from
  before the insert to the claim's return (the least a push-to-start hand-over costs).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import aiomysql
import asyncpg

BATCH = 100

FAST = "(SELECT set_config('synchronous_commit', 'off', true)) AS fast"
"""As the driver's claims and acks: commit without waiting for the WAL flush (PostgreSQL)."""


async def _pg_rate(dsn: str, table: str, payload: bytes, count: int) -> float:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            f"INSERT INTO {table} (queue_name, payload, visibility_timeout_seconds) "  # noqa: S608
            "SELECT 'raw', $1::bytea, 60 FROM generate_series(1, $2)",
            payload,
            count,
        )
        claim = (
            f"UPDATE {table} SET status = 'leased', locked_until = now() + interval '60 s' "  # noqa: S608
            f"FROM {FAST} WHERE id IN (SELECT id FROM {table} WHERE queue_name = 'raw' "
            "AND status = 'pending' AND available_at <= now() ORDER BY available_at, id "
            f"LIMIT {BATCH} FOR UPDATE SKIP LOCKED) RETURNING id, payload"
        )
        done = 0
        started = time.perf_counter()
        while done < count:
            rows = await connection.fetch(claim)
            if not rows:
                break
            await connection.execute(
                f"DELETE FROM {table} USING {FAST} WHERE id = ANY($1::bigint[])",  # noqa: S608
                [row[0] for row in rows],
            )
            done += len(rows)
        return done / (time.perf_counter() - started)
    finally:
        await connection.close()


async def _mysql_rate(params: dict[str, Any], table: str, payload: bytes, count: int) -> float:
    connection = await aiomysql.connect(**params, autocommit=True)
    try:
        async with connection.cursor() as cursor:
            row = f"('raw', X'{payload.hex()}', 'pending', NOW(6), 60, NOW(6), NOW(6))"
            for start in range(0, count, 1000):
                values = ", ".join([row] * min(1000, count - start))
                await cursor.execute(
                    f"INSERT INTO {table} (queue_name, payload, status, available_at, "  # noqa: S608
                    f"visibility_timeout_seconds, created_at, updated_at) VALUES {values}"
                )
            done = 0
            started = time.perf_counter()
            while done < count:
                await connection.begin()
                await cursor.execute(
                    f"SELECT id, payload FROM {table} WHERE queue_name = 'raw' "  # noqa: S608
                    "AND status = 'pending' AND available_at <= NOW(6) "
                    f"ORDER BY available_at, id LIMIT {BATCH} FOR UPDATE SKIP LOCKED"
                )
                ids = ",".join(str(found[0]) for found in await cursor.fetchall())
                if not ids:
                    await connection.commit()
                    break
                await cursor.execute(
                    f"UPDATE {table} SET status = 'leased' WHERE id IN ({ids})"  # noqa: S608
                )
                await connection.commit()
                await cursor.execute(f"DELETE FROM {table} WHERE id IN ({ids})")  # noqa: S608
                done += ids.count(",") + 1
            return done / (time.perf_counter() - started)
    finally:
        connection.close()


def _sqlite_rate(path: str, table: str, payload: bytes, count: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous=NORMAL")  # as the driver (WAL is in the file)
    try:
        now = time.time()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            f"INSERT INTO {table} (queue_name, payload, status, available_at, "  # noqa: S608
            "visibility_timeout_seconds, created_at, updated_at) "
            "VALUES ('raw', ?, 'pending', ?, 60, ?, ?)",
            [(payload, now, now, now)] * count,
        )
        connection.execute("COMMIT")
        claim = (
            f"UPDATE {table} SET status = 'leased', locked_until = ? WHERE id IN "  # noqa: S608
            f"(SELECT id FROM {table} WHERE queue_name = 'raw' AND status = 'pending' "
            f"AND available_at <= ? ORDER BY available_at, id LIMIT {BATCH}) "
            "RETURNING id, payload"
        )
        done = 0
        started = time.perf_counter()
        while done < count:
            connection.execute("BEGIN IMMEDIATE")
            rows = connection.execute(claim, (time.time() + 60, time.time())).fetchall()
            connection.execute("COMMIT")
            if not rows:
                break
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(
                f"DELETE FROM {table} WHERE id = ?",  # noqa: S608
                [(row[0],) for row in rows],
            )
            connection.execute("COMMIT")
            done += len(rows)
        return done / (time.perf_counter() - started)
    finally:
        connection.close()


async def claim_delete_rate(
    driver: str, where: dict[str, Any], table: str, payload: bytes, count: int
) -> float:
    """Return rows/s of the bare batched claim-and-delete loop on ``driver``'s table.

    Args:
        driver: ``"postgres"``, ``"mysql"`` or ``"sqlite"``.
        where: ``{"dsn": ...}``, aiomysql's connect keywords, or ``{"path": ...}``.
        table: the quoted queue table name.
        payload: the body each row carries (the size of a real message).
        count: rows to fill and drain.

    """
    if driver == "postgres":
        return await _pg_rate(where["dsn"], table, payload, count)
    if driver == "mysql":
        return await _mysql_rate(where, table, payload, count)
    return await asyncio.to_thread(_sqlite_rate, where["path"], table, payload, count)


async def notify_handover_ms(dsn: str, table: str, count: int, interval: float) -> list[float]:
    """Return the hand-over latencies (ms) of ``count`` paced inserts woken by NOTIFY."""
    listener = await asyncpg.connect(dsn)
    producer = await asyncpg.connect(dsn)
    woken: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("raw_bench", lambda *args: woken.put_nowait(args[3]))
    claim = (
        f"UPDATE {table} SET status = 'leased' FROM {FAST} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
        "WHERE queue_name = 'rawlat' AND status = 'pending' ORDER BY id LIMIT 1 "
        "FOR UPDATE SKIP LOCKED) RETURNING id"
    )
    latencies: list[float] = []
    try:
        for _ in range(count):
            sent = time.perf_counter()
            await producer.execute(
                f"WITH i AS (INSERT INTO {table} (queue_name, payload, "  # noqa: S608
                "visibility_timeout_seconds) VALUES ('rawlat', '\\x00', 60) RETURNING id) "
                "SELECT pg_notify('raw_bench', 'x') FROM i"
            )
            await asyncio.wait_for(woken.get(), 5)
            await listener.fetch(claim)
            latencies.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - sent)))
    finally:
        await listener.close()
        await producer.close()
    return latencies
