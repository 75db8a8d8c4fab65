"""asynctasq on PostgreSQL, MySQL and SQLite: enqueue, drain and latency, next to raw ceilings.

Run from the repository root (not a test; pytest does not collect it)::

    .venv/bin/python benchmarks/sql_bench.py               # full, a few minutes
    .venv/bin/python benchmarks/sql_bench.py --quick       # smaller counts
    .venv/bin/python benchmarks/sql_bench.py --drivers postgres --json out.json

Needs PostgreSQL at 127.0.0.1:5432 (db ``test``, user ``postgres``) and MySQL/MariaDB at
127.0.0.1:3306 (db ``test``, user ``root``) unless ``--drivers`` leaves them out; SQLite
needs nothing. Each driver gets fresh tables (``bench_<run>_q``/``_d``, migrated as
``asynctasq migrate`` does) that are dropped at the end. Workers are real ``python -m
asynctasq worker`` subprocesses configured by ``ASYNCTASQ_*`` variables; the tasks are in
:mod:`sql_bench_tasks`. With ``--redis`` the Redis drain runs in the same run for scale.

Figures per driver:

* enqueue batch: ``dispatch_many([noop() x 100])`` in a loop (tasks/s);
* drain c100: N queued no-op tasks through one worker at concurrency 100, timed from the
  first task's start to the last one's / the bare batched claim-and-delete loop of the
  same client on the same table (:mod:`sql_bench_raw`), and the ratio;
* latency p50/p95/p99 at 100 tasks/s: ``stamp(time.time())`` dispatched every 10 ms to an
  idle worker (concurrency 10), minus its body's start; on PostgreSQL next to a raw
  INSERT + NOTIFY hand-over to a LISTENing connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

import asynctasq
from asynctasq.drivers.mysql import client_params, connect_params

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import sql_bench_raw  # noqa: E402
import sql_bench_tasks  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_DSN = "mysql://root@127.0.0.1:3306/test"
REDIS_URL = "redis://127.0.0.1:6379"
TIMEOUT_SECONDS = 300.0


@attrs.frozen
class Sizes:
    """How much each phase does."""

    enqueue_batches: int
    drain: int
    latency: int
    interval: float = 0.01


FULL = Sizes(enqueue_batches=100, drain=20_000, latency=1_000)
QUICK = Sizes(enqueue_batches=30, drain=5_000, latency=300)


@attrs.define
class Target:
    """One driver under test: its settings group and fresh table names."""

    driver: str
    group: dict[str, Any]

    @property
    def env(self) -> dict[str, str]:
        """``ASYNCTASQ_*`` variables for a worker on this target."""
        found = {"ASYNCTASQ_DRIVER": self.driver}
        for key, value in self.group.items():
            found[f"ASYNCTASQ_{self.driver.upper()}_{key.upper()}"] = str(value)
        return found

    def config(self, queue: str) -> dict[str, Any]:
        """The ``init()`` overrides of a handle on this target with default queue ``queue``."""
        return {"driver": self.driver, self.driver: self.group, "task_defaults": {"queue": queue}}


def target(driver: str, run: str, tmp: Path) -> Target:
    """Return the target of ``driver`` with this run's table names (or Redis URL)."""
    if driver == "redis":
        return Target("redis", {"url": REDIS_URL})
    group: dict[str, Any] = {"queue_table": f"bench_{run}_q", "dead_letter_table": f"bench_{run}_d"}
    if driver == "postgres":
        group["dsn"] = PG_DSN
    elif driver == "mysql":
        group["dsn"] = MYSQL_DSN
    else:
        group["path"] = str(tmp / f"bench_{run}.sqlite3")
    return Target(driver, group)


async def migrate(found: Target) -> None:
    """Create the target's tables."""
    if found.driver == "redis":
        return
    async with asynctasq.init(found.config("none"), env_file=None) as handle:
        migrator: Any = asynctasq.build_driver(handle.config)
        await migrator.migrate()


async def drop(found: Target) -> None:
    """Drop the target's tables (and PostgreSQL's notify function)."""
    table, dead = found.group.get("queue_table"), found.group.get("dead_letter_table")
    if found.driver == "postgres":
        import asyncpg

        connection = await asyncpg.connect(PG_DSN)
        await connection.execute(f'DROP TABLE IF EXISTS "{table}", "{dead}"')
        await connection.execute(f'DROP FUNCTION IF EXISTS "{table}_notify"()')
        await connection.close()
    elif found.driver == "mysql":
        import aiomysql

        connection = await aiomysql.connect(**client_params(connect_params(MYSQL_DSN)))
        async with connection.cursor() as cursor:
            await cursor.execute(f"DROP TABLE IF EXISTS `{table}`, `{dead}`")
        connection.close()


async def run_worker(
    found: Target, tmp: Path, queue: str, concurrency: int, max_tasks: int, feed: Any = None
) -> dict[str, Any]:
    """Run one worker subprocess until it handled ``max_tasks``; return its tasks' stats."""
    stats = tmp / f"{queue}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    env.update(found.env, BENCH_STATS_FILE=str(stats))
    argv = [
        sys.executable, "-m", "asynctasq", "worker", "--import", "sql_bench_tasks",
        "--queues", queue, "--concurrency", str(concurrency), "--max-tasks", str(max_tasks),
        "--log-level", "warning", "--env-file", str(tmp / "no.env"),
    ]  # fmt: skip
    log = (tmp / f"{queue}.log").open("wb")
    proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    feeder = asyncio.ensure_future(feed()) if feed is not None else None
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        while proc.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker on {queue} did not finish")
            if feeder is not None and feeder.done():
                feeder.result()
            await asyncio.sleep(0.05)
        if feeder is not None:
            await feeder
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    if proc.returncode != 0 or not stats.exists():
        text = (tmp / f"{queue}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"worker exited {proc.returncode}: {text}")
    result: dict[str, Any] = json.loads(stats.read_text())
    return result


async def enqueue_rate(found: Target, run: str, sizes: Sizes) -> float:
    """Return tasks/s of ``dispatch_many`` of 100 no-ops in a loop."""
    queue = f"bench-{run}-enqueue"
    async with asynctasq.init(found.config(queue), env_file=None):
        await asynctasq.dispatch_many([sql_bench_tasks.noop() for _ in range(100)])  # warm
        started = time.perf_counter()
        for _ in range(sizes.enqueue_batches):
            await asynctasq.dispatch_many([sql_bench_tasks.noop() for _ in range(100)])
        return sizes.enqueue_batches * 100 / (time.perf_counter() - started)


async def drain_rate(found: Target, run: str, tmp: Path, count: int) -> tuple[float, int]:
    """Return (tasks/s, message bytes) of ``count`` queued no-ops through one c100 worker."""
    queue = f"bench-{run}-drain"
    async with asynctasq.init(found.config(queue), env_file=None) as handle:
        for start in range(0, count, 1000):
            await asynctasq.dispatch_many(
                [sql_bench_tasks.noop() for _ in range(min(1000, count - start))]
            )
        driver = await handle.driver()
        [held] = await driver.dequeue([queue], limit=1, wait_seconds=0)
        size = len(held.body)
        await driver.release([held])
    stats = await run_worker(found, tmp, queue, 100, count)
    noop = stats["noop"]
    return (noop["count"] - 1) / (noop["last"] - noop["first"]), size


async def latencies(found: Target, run: str, tmp: Path, sizes: Sizes) -> list[float]:
    """Return ms from dispatch to body start of ``sizes.latency`` tasks paced at 100/s."""
    queue = f"bench-{run}-latency"

    async def feed() -> None:
        async with asynctasq.init(found.config(queue), env_file=None):
            await asyncio.sleep(2.0)  # the worker is up and idle
            for _ in range(sizes.latency):
                sent = time.time()
                await sql_bench_tasks.stamp(sent).dispatch()
                await asyncio.sleep(max(0.0, sizes.interval - (time.time() - sent)))

    stats = await run_worker(found, tmp, queue, 10, sizes.latency, feed)
    return sorted((started - sent) * 1000 for sent, started in stats["stamps"])


def percentile(values: Sequence[float], share: float) -> float:
    """Return the ``share`` (0-1) percentile of sorted ``values``."""
    return values[min(len(values) - 1, int(share * len(values)))]


async def ceiling(found: Target, payload_bytes: int, count: int) -> float:
    """Return the raw claim-and-delete rate on the target's table."""
    quote = "`" if found.driver == "mysql" else '"'
    table = f"{quote}{found.group['queue_table']}{quote}"
    where: dict[str, Any] = dict(found.group)
    if found.driver == "mysql":
        where = client_params(connect_params(MYSQL_DSN))
    return await sql_bench_raw.claim_delete_rate(
        found.driver, where, table, b"x" * payload_bytes, count
    )


async def bench_driver(driver: str, sizes: Sizes, tmp: Path) -> dict[str, Any]:
    """Return every figure of one driver."""
    run = uuid.uuid4().hex[:8]
    found = target(driver, run, tmp)
    await migrate(found)
    figures: dict[str, Any] = {}
    try:
        figures["enqueue_batch_tasks_per_s"] = await enqueue_rate(found, run, sizes)
        rate, size = await drain_rate(found, run, tmp, sizes.drain)
        figures["drain_c100_tasks_per_s"] = rate
        figures["message_bytes"] = size
        if driver != "redis":
            raw = await ceiling(found, size, sizes.drain)
            figures["raw_claim_delete_per_s"] = raw
            figures["drain_ratio"] = rate / raw
        lat = await latencies(found, run, tmp, sizes)
        for share in (0.5, 0.95, 0.99):
            figures[f"latency_p{int(share * 100)}_ms"] = percentile(lat, share)
        if driver == "postgres":
            table = f'"{found.group["queue_table"]}"'
            raw_lat = sorted(
                await sql_bench_raw.notify_handover_ms(PG_DSN, table, 300, sizes.interval)
            )
            figures["raw_notify_handover_p50_ms"] = percentile(raw_lat, 0.5)
    finally:
        await drop(found)
    return figures


def report(results: dict[str, dict[str, Any]], sizes: Sizes) -> str:
    """Return the figures as a plain-text table."""
    lines = [
        f"asynctasq SQL drivers, {platform.node()}: {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; drain {sizes.drain} no-op tasks, "
        f"latency {sizes.latency} tasks at {1 / sizes.interval:.0f}/s",
        "",
        f"{'driver':<9} {'enqueue/s':>10} {'drain c100/s':>13} {'raw ceiling/s':>14} "
        f"{'ratio':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}",
    ]
    for driver, figures in results.items():
        raw = figures.get("raw_claim_delete_per_s")
        ratio = figures.get("drain_ratio")
        lines.append(
            f"{driver:<9} {figures['enqueue_batch_tasks_per_s']:>10.0f} "
            f"{figures['drain_c100_tasks_per_s']:>13.0f} "
            f"{(f'{raw:.0f}' if raw else '-'):>14} {(f'{ratio:.0%}' if ratio else '-'):>6} "
            f"{figures['latency_p50_ms']:>7.1f} {figures['latency_p95_ms']:>7.1f} "
            f"{figures['latency_p99_ms']:>7.1f}"
        )
    if "postgres" in results:
        pg = results["postgres"]
        verdict = "PASS" if pg["latency_p50_ms"] <= 5.0 else "MISS"
        share = pg["drain_ratio"]
        lines += [
            "",
            f"PostgreSQL drain: {share:.0%} of the raw ceiling (target >= 25%: "
            f"{'PASS' if share >= 0.25 else 'MISS'})",
            f"PostgreSQL latency p50 at 100 tasks/s: {pg['latency_p50_ms']:.1f} ms (target <= "
            f"5 ms: {verdict}); raw INSERT+NOTIFY hand-over p50 "
            f"{pg['raw_notify_handover_p50_ms']:.1f} ms",
        ]
    return "\n".join(lines)


async def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--drivers", default="postgres,mysql,sqlite", help="comma-separated")
    parser.add_argument("--redis", action="store_true", help="also run the Redis figures")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    if args.redis:
        drivers.append("redis")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sql-bench-") as directory:
        for driver in drivers:
            print(f"running {driver} ...", file=sys.stderr, flush=True)
            results[driver] = await bench_driver(driver, sizes, Path(directory))
    print(report(results, sizes))
    if args.json:
        text = json.dumps({"sizes": attrs.asdict(sizes), **results}, indent=2)
        Path(args.json).write_text(text)  # noqa: ASYNC240 - once, at the end
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
