"""asynctasq on the local Redis: enqueue, drain, latency and memory, next to raw ceilings.

Run from the repository root (not a test; pytest does not collect it)::

    .venv/bin/python benchmarks/redis_bench.py            # full, about a minute
    .venv/bin/python benchmarks/redis_bench.py --quick    # smaller counts, < 40 s
    .venv/bin/python benchmarks/redis_bench.py --json out.json   # also write the figures

Needs Redis at 127.0.0.1:6379 (``--redis-url``). Every key it makes starts with
``queue:bench-<run id>`` and is deleted at the end. Workers are real ``python -m asynctasq
worker`` subprocesses (:mod:`bench_worker`); the tasks are in :mod:`bench_tasks`.

Figures, each next to plain redis-py doing the same Redis moves (:mod:`bench_raw`):

* enqueue single: ``await noop().dispatch()`` in a loop / awaited single ``LPUSH``;
* enqueue batch: ``dispatch_many([noop() x 100])`` / pipelines of 100 ``LPUSH``
  (these four loops alternate in ten short rounds; each figure is over all its rounds);
* drain c10 / c100: N queued no-op tasks through one worker at that concurrency, timed
  from the first task's start to the last one's (worker start-up and exit reported apart)
  / ``RPOP 100`` + one pipelined ``ZADD``/``ZREM`` of the batch (median of three runs);
* latency p50/p95/p99: ``stamp(time.time())`` dispatched every 10 ms to an idle worker
  (concurrency 10), minus when its body started / a paced ``LPUSH`` until a ``BLMOVE``
  blocked on another connection returns it;
* worker peak RSS: ``VmHWM`` of the c100 drain worker at its exit / a process that only
  imports asynctasq, redis, uvloop and the task module.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from redis.asyncio import Redis

import asynctasq

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script it is already sys.path[0]
    sys.path.insert(0, str(HERE))

import bench_raw  # noqa: E402  (needs HERE on sys.path)
import bench_tasks  # noqa: E402
from bench_report import Row, details, machine, source, table  # noqa: E402
from bench_worker import BenchError, import_floor_mib, run_worker  # noqa: E402

ROUNDS = 10
"""Enqueue loops alternate in this many rounds; the raw claim+ack loop runs RAW_RUNS times."""
RAW_RUNS = 3


@attrs.frozen
class Sizes:
    """How much each phase does."""

    single: int  # awaited single dispatches per round (and raw LPUSH)
    batch_rounds: int  # batches of 100 per round
    drain: int  # tasks per drain run (and per raw claim+ack round)
    latency: int  # paced tasks for the latency figures
    interval: float = 0.01  # seconds between latency dispatches (100 tasks/s)


FULL = Sizes(single=5_000, batch_rounds=300, drain=50_000, latency=1_500)
QUICK = Sizes(single=2_000, batch_rounds=100, drain=10_000, latency=400)


@attrs.define
class Bench:
    """One run: the Redis client, the run id, the temp directory and the side figures."""

    url: str
    sizes: Sizes
    tmp: Path
    raw: Redis
    python: str = sys.executable  # the workers' interpreter
    run: str = attrs.field(factory=lambda: uuid.uuid4().hex[:8])
    figures: dict[str, Any] = attrs.field(factory=dict)

    def queue(self, phase: str) -> str:
        """Return this run's queue name for ``phase``."""
        return f"bench-{self.run}-{phase}"

    def handle(self, queue: str) -> asynctasq.Handle:
        """Make current, and return, a Redis handle whose default queue is ``queue``."""
        config = {"driver": "redis", "redis": {"url": self.url}, "task_defaults": {"queue": queue}}
        return asynctasq.init(config, env_file=None)

    async def element_size(self) -> int:
        """Return the stored size of one ``noop()`` message (driver header + body), bytes."""
        queue = self.queue("size")
        async with self.handle(queue):
            await bench_tasks.noop().dispatch()
        element = await self.raw.lindex(f"queue:{queue}", 0)
        assert isinstance(element, bytes)
        return len(element)

    async def left(self, queue: str) -> tuple[int, int]:
        """Return (ready, in flight) counts of ``queue``."""
        key = f"queue:{queue}"
        return await self.raw.llen(key), await self.raw.zcard(f"{key}:processing")

    async def cleanup(self) -> None:
        """Delete every key of this run."""
        keys = [key async for key in self.raw.scan_iter(match=f"queue:bench-{self.run}*")]
        if keys:
            await self.raw.delete(*keys)


async def timed(work: Callable[[], Awaitable[None]]) -> float:
    """Return the seconds ``work()`` takes."""
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def enqueue_rows(bench: Bench, payload: bytes) -> list[Row]:
    """Single and batched dispatch against raw LPUSH / pipelined LPUSH.

    The four loops alternate in ``ROUNDS`` short rounds and each figure is its total count
    over its total time, so ours and the ceiling see the same moments of a noisy machine.
    """
    sizes, raw = bench.sizes, bench.raw
    raw_key = f"queue:{bench.queue('raw-enqueue')}"
    noop = bench_tasks.noop
    batch = bench_raw.BATCH
    single_n, batch_n = sizes.single // ROUNDS, sizes.batch_rounds // ROUNDS

    async def single() -> None:
        for _ in range(single_n):
            await noop().dispatch()

    async def batched() -> None:
        for _ in range(batch_n):
            await asynctasq.dispatch_many([noop() for _ in range(batch)])

    async def raw_single() -> None:
        await bench_raw.lpush_single(raw, raw_key, payload, single_n)

    async def raw_batched() -> None:
        await bench_raw.lpush_pipelined(raw, raw_key, payload, batch_n)

    loops = {"single": single, "raw_single": raw_single, "batch": batched, "raw_batch": raw_batched}
    seconds = dict.fromkeys(loops, 0.0)
    async with bench.handle(bench.queue("enqueue")):
        for _ in range(200):  # connect and warm up both clients
            await noop().dispatch()
            await raw.lpush(raw_key, payload)
        for _ in range(ROUNDS):
            for name, loop in loops.items():
                seconds[name] += await timed(loop)
            await raw.delete(raw_key, f"queue:{bench.queue('enqueue')}")
    variadic = await bench_raw.lpush_variadic(raw, raw_key, payload, sizes.batch_rounds)
    await raw.delete(raw_key)
    bench.figures["raw_lpush_variadic_100"] = variadic
    rates = {
        name: ROUNDS * (single_n if "single" in name else batch_n * batch) / spent
        for name, spent in seconds.items()
    }
    return [
        Row("enqueue single", "tasks/s", rates["single"], rates["raw_single"], ">= 50% of raw",
            rates["single"] >= 0.5 * rates["raw_single"]),
        Row("enqueue batch 100", "tasks/s", rates["batch"], rates["raw_batch"], ">= 30% of raw",
            rates["batch"] >= 0.3 * rates["raw_batch"]),
    ]  # fmt: skip


async def drain(bench: Bench, concurrency: int) -> dict[str, float]:
    """Queue N no-op tasks, drain them through one worker; return its figures.

    Raises:
        BenchError: not every task ran once, or something was left in the queue.
    """
    count = bench.sizes.drain
    queue = bench.queue(f"drain{concurrency}")
    async with bench.handle(queue):
        for start in range(0, count, 1000):
            size = min(1000, count - start)
            await asynctasq.dispatch_many([bench_tasks.noop() for _ in range(size)])
    in_flight_max = 0

    async def watch_in_flight() -> None:  # leases held at once: at most ~concurrency
        nonlocal in_flight_max
        while True:
            in_flight_max = max(in_flight_max, await bench.raw.zcard(f"queue:{queue}:processing"))
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch_in_flight())
    try:
        run = await run_worker(bench.url, bench.tmp, queue, concurrency, count, python=bench.python)
    finally:
        watcher.cancel()
    noop = run.stats["noop"]
    if noop["count"] != count:
        raise BenchError(f"drain c{concurrency}: {noop['count']} of {count} tasks ran")
    if any(left := await bench.left(queue)):
        raise BenchError(f"drain c{concurrency}: (ready, in flight) left after exit: {left}")
    return {
        "rate": (count - 1) / (noop["last"] - noop["first"]),
        "process_rate": count / (run.exited_at - run.spawned_at),
        "startup_s": noop["first"] - run.spawned_at,
        "shutdown_s": run.exited_at - noop["last"],
        "hwm_mib": run.stats["VmHWM"] / 1024,
        "hwm_polled_mib": run.hwm_polled_kib / 1024,
        "processing_max": in_flight_max,
        "warnings": run.warnings,
    }


async def drain_rows(bench: Bench, payload: bytes) -> list[Row]:
    """Drain at concurrency 10 and 100 against the raw claim+ack loop; and the RSS row."""
    c10 = await drain(bench, 10)
    c100 = await drain(bench, 100)
    key = f"queue:{bench.queue('raw-drain')}"
    runs = [
        await bench_raw.claim_ack(bench.raw, key, f"{key}:processing", payload, bench.sizes.drain)
        for _ in range(RAW_RUNS)
    ]
    ceiling = sorted(runs)[RAW_RUNS // 2]  # the median run
    bench.figures["drain_c10"] = c10
    bench.figures["drain_c100"] = c100
    floor = import_floor_mib(bench.python)
    bench.figures["rss_import_floor_mib"] = floor
    rss = c100["hwm_mib"]
    return [
        Row("drain c10", "tasks/s", c10["rate"], ceiling, "-", None),
        Row("drain c100", "tasks/s", c100["rate"], ceiling, ">= 20% of raw",
            c100["rate"] >= 0.2 * ceiling),
        Row("worker peak RSS c100", "MiB", rss, floor, "<= 60 MiB", rss <= 60.0,
            lower_is_better=True),
    ]  # fmt: skip


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def latency_rows(bench: Bench, payload: bytes) -> list[Row]:
    """Dispatch ``stamp(now)`` every 10 ms to an idle worker; compare with the raw hand-over."""
    sizes = bench.sizes
    queue = bench.queue("latency")
    warm = 50

    async def feed() -> None:
        async with bench.handle(queue):
            await bench_tasks.stamp(-1.0).dispatch()  # the worker is up once this one is gone
            limit = time.monotonic() + 20.0
            while any(await bench.left(queue)):
                if time.monotonic() > limit:
                    raise BenchError("the latency worker never took its first task")
                await asyncio.sleep(0.01)
            loop = asyncio.get_running_loop()
            begin = loop.time()
            for number in range(warm + sizes.latency):
                pause = begin + number * sizes.interval - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                sent = time.time()
                await bench_tasks.stamp(sent if number >= warm else -1.0).dispatch()

    run = await run_worker(
        bench.url, bench.tmp, queue, 10, 1 + warm + sizes.latency, feed, python=bench.python
    )
    ours = sorted((started - sent) * 1000.0 for sent, started in run.stats["stamps"] if sent > 0)
    if len(ours) != sizes.latency:
        raise BenchError(f"latency: {len(ours)} of {sizes.latency} stamps came back")
    key = f"queue:{bench.queue('raw-latency')}"
    raw = sorted(
        await bench_raw.push_to_pop_ms_two_processes(
            bench.url,
            key,
            f"{key}:processing",
            payload,
            sizes.latency,
            sizes.interval,
            bench.python,
            str(bench.tmp / "raw-latency.json"),
        )
    )
    same = sorted(
        await bench_raw.push_to_pop_ms(
            bench.url, key, f"{key}:processing", payload, sizes.latency, sizes.interval
        )
    )
    bench.figures["latency_ms"] = {
        name: {
            "mean": sum(values) / len(values),
            "p50": percentile(values, 0.5),
            "max": values[-1],
            "samples": len(values),
        }
        for name, values in (("ours", ours), ("raw", raw), ("raw_one_process", same))
    }
    rows = []
    for label, fraction, limit in (("p50", 0.50, 1.0), ("p95", 0.95, None), ("p99", 0.99, 5.0)):
        value = percentile(ours, fraction)
        target = "-" if limit is None else f"<= {limit:g} ms"
        passed = None if limit is None else value <= limit
        ceiling = percentile(raw, fraction)
        rows.append(Row(f"latency {label}", "ms", value, ceiling, target, passed, True))
    return rows


PHASES = ("enqueue", "drain", "latency")


async def measure(
    url: str, sizes: Sizes, tmp: Path, phases: Sequence[str] = PHASES, python: str = sys.executable
) -> tuple[list[Row], dict[str, Any]]:
    """Run the phases once; return the rows and the side figures."""
    raw = Redis.from_url(url)
    bench = Bench(url, sizes, tmp, raw, python)
    bench.figures["worker_python"] = python
    try:
        info = await raw.info("server")
        bench.figures["machine"] = {**machine(), "redis": info["redis_version"]}
        bench.figures["asynctasq"] = source()
        size = await bench.element_size()
        bench.figures["element_bytes"] = size
        payload = b"x" * size
        rows: list[Row] = []
        for phase, run in (
            ("enqueue", enqueue_rows),
            ("drain", drain_rows),
            ("latency", latency_rows),
        ):
            if phase in phases:
                rows += await run(bench, payload)
    finally:
        await bench.cleanup()
        await raw.aclose()
    return rows, bench.figures


def load_average() -> float:
    """Return the 1-minute load average (other work on the machine skews every figure)."""
    with open("/proc/loadavg", encoding="ascii") as loadavg:
        return float(loadavg.read().split()[0])


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Return the command line options."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (< 40 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON; - = stdout")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument(
        "--only", metavar="PHASES", default=",".join(PHASES), help="e.g. latency or enqueue,drain"
    )
    parser.add_argument(
        "--worker-python",
        metavar="PATH",
        default=sys.executable,
        help="the workers' interpreter, e.g. a virtualenv with only asynctasq's dependencies "
        "(this asynctasq goes first on its PYTHONPATH); default: this one",
    )
    parser.add_argument(
        "--loop",
        choices=("uvloop", "asyncio"),
        help="this process' event loop (default: uvloop when installed, like the worker)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; return 0 (even with MISSes), 1 if it failed."""
    args = parse(argv)
    sizes = QUICK if args.quick else FULL
    started = time.time()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="asynctasq-bench-") as tmp:
        use_uvloop = None if args.loop is None else args.loop == "uvloop"
        try:
            phases = args.only.split(",")
            coro = measure(args.redis_url, sizes, Path(tmp), phases, args.worker_python)
            rows, figures = asynctasq.run(coro, use_uvloop=use_uvloop)
        except BenchError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    figures.update(
        date=time.strftime("%Y-%m-%d %H:%M %Z"),
        seconds=round(time.time() - started, 1),
        mode="quick" if args.quick else "full",
        load_average={"before": load_before, "after": load_average()},
        sizes=attrs.asdict(sizes),
        rows=[{**attrs.asdict(row), "ratio": row.ratio} for row in rows],
    )
    out = sys.stderr if args.json == "-" else sys.stdout
    m = figures["machine"]
    print(
        f"asynctasq Redis benchmark ({figures['mode']}), {figures['date']}, took "
        f"{figures['seconds']} s\n{m['cpus']} CPUs {m['cpu_model']}, {m['ram_gib']} GiB RAM, "
        f"Python {m['python']} ({m['loop']}), Redis {m['redis']}; load average "
        f"{figures['load_average']['before']} before, {figures['load_average']['after']} after\n"
        f"asynctasq: {figures['asynctasq']}; workers run by {figures['worker_python']}\n",
        file=out,
    )
    print(table(rows) + "\n\n" + details(figures), file=out)
    if args.json == "-":
        print(json.dumps(figures, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
