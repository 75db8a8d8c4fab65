"""asynctasq on the local RabbitMQ: dispatch with confirms, drain, latency, next to raw aio-pika.

Run from the repository root (not a test; pytest does not collect it)::

    .venv/bin/python benchmarks/rabbitmq_bench.py            # full, about two minutes
    .venv/bin/python benchmarks/rabbitmq_bench.py --quick    # smaller counts
    .venv/bin/python benchmarks/rabbitmq_bench.py --json out.json

Needs RabbitMQ at 127.0.0.1:5672 (``--rabbitmq-url``). Everything it declares is named
``bench-<run id>...`` and deleted at the end. Workers are real ``python -m asynctasq worker``
subprocesses importing :mod:`bench_tasks`.

Figures, each next to plain aio-pika doing the same broker moves (:mod:`rabbitmq_raw`):

* enqueue single: ``await noop().dispatch()`` in a loop (each returns after the broker's
  confirm) / an awaited confirmed publish;
* enqueue batch 100: ``dispatch_many([noop() x 100])`` (100 publishes, confirms awaited
  together) / 100 publishes gathered (both alternate over three rounds);
* drain c100: N queued no-op tasks through one worker at concurrency 100 with
  ``prefetch_count`` 100, first task's start to last one's / a consumer with prefetch 100
  acking each message (median of three). Also c10 with prefetch 10, no target;
* latency p50/p95/p99: ``stamp(time.time())`` dispatched every 10 ms to an idle worker
  (concurrency 10) minus when its body started / a paced publish to a consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aio_pika
import attrs

import asynctasq

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script it is already sys.path[0]
    sys.path.insert(0, str(HERE))

import bench_tasks  # noqa: E402  (needs HERE on sys.path)
import rabbitmq_raw  # noqa: E402
from bench_report import Row, machine, source, table  # noqa: E402
from bench_worker import TIMEOUT_SECONDS, BenchError, WorkerRun, read_hwm, worker_env  # noqa: E402

ROUNDS = 3
RAW_RUNS = 3


@attrs.frozen
class Sizes:
    """How much each phase does."""

    single: int  # awaited single dispatches per figure
    batch_rounds: int  # batches of 100 per figure
    drain: int  # tasks per drain run (and per raw consume run)
    latency: int  # paced tasks for the latency figures
    interval: float = 0.01  # seconds between latency dispatches


FULL = Sizes(single=1_500, batch_rounds=60, drain=20_000, latency=1_000)
QUICK = Sizes(single=600, batch_rounds=30, drain=5_000, latency=300)


@attrs.define
class Bench:
    """One run: the broker URL, run id, temp directory and the side figures."""

    url: str
    sizes: Sizes
    tmp: Path
    run: str = attrs.field(factory=lambda: uuid.uuid4().hex[:8])
    figures: dict[str, Any] = attrs.field(factory=dict)
    queues: list[str] = attrs.field(factory=list)

    @property
    def exchange(self) -> str:
        return f"bench-{self.run}"

    def queue(self, phase: str) -> str:
        """Return (and remember, for cleanup) this run's queue name for ``phase``."""
        name = f"bench-{self.run}-{phase}"
        self.queues.append(name)
        return name

    def handle(self, queue: str, prefetch: int = 100) -> asynctasq.Handle:
        """Make current, and return, a RabbitMQ handle whose default queue is ``queue``."""
        settings = {"url": self.url, "exchange_name": self.exchange, "prefetch_count": prefetch}
        config = {"driver": "rabbitmq", "rabbitmq": settings, "task_defaults": {"queue": queue}}
        return asynctasq.init(config, env_file=None)

    async def channel_do(self, work: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run ``work(channel)`` on a fresh plain connection."""
        connection = await aio_pika.connect(self.url)
        try:
            return await work(await connection.channel())
        finally:
            await connection.close()

    async def message_size(self) -> int:
        """Return the body size of one stored ``noop()`` message, bytes."""
        queue = self.queue("size")
        async with self.handle(queue):
            await bench_tasks.noop().dispatch()

        async def get(channel: Any) -> int:
            got = await (await channel.get_queue(queue)).get(timeout=10)
            await got.ack()
            return len(got.body)

        size: int = await self.channel_do(get)
        return size

    async def left(self, queue: str) -> int:
        """Return how many messages ``queue`` still holds (ready)."""

        async def count(channel: Any) -> int:
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)

        left: int = await self.channel_do(count)
        return left

    async def cleanup(self) -> None:
        """Delete every queue and the exchange of this run."""

        async def delete(channel: Any) -> None:
            for queue in self.queues:
                for name in (queue, f"{queue}_delayed", f"{queue}_dead"):
                    await channel.queue_delete(name)
            await channel.exchange_delete(self.exchange)

        await self.channel_do(delete)


async def timed(work: Callable[[], Awaitable[None]]) -> float:
    """Return the seconds ``work()`` takes."""
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def enqueue_rows(bench: Bench, payload: bytes) -> list[Row]:
    """Single and batched dispatch with confirms against the same in raw aio-pika."""
    sizes = bench.sizes
    noop = bench_tasks.noop
    raw_queue = bench.queue("raw-enqueue")
    single_n, batch_n = sizes.single // ROUNDS, sizes.batch_rounds // ROUNDS
    connection = await aio_pika.connect(bench.url)
    channel = await connection.channel()
    await rabbitmq_raw.declare(channel, raw_queue)

    async def single() -> None:
        for _ in range(single_n):
            await noop().dispatch()

    async def batched() -> None:
        for _ in range(batch_n):
            await asynctasq.dispatch_many([noop() for _ in range(rabbitmq_raw.BATCH)])

    async def raw_single() -> None:
        await rabbitmq_raw.publish_single(channel, raw_queue, payload, single_n)

    async def raw_batched() -> None:
        await rabbitmq_raw.publish_batched(channel, raw_queue, payload, batch_n)

    loops = {"single": single, "raw_single": raw_single, "batch": batched, "raw_batch": raw_batched}
    seconds = dict.fromkeys(loops, 0.0)
    try:
        async with bench.handle(bench.queue("enqueue")):
            for _ in range(100):  # connect, declare and warm up both clients
                await noop().dispatch()
            await rabbitmq_raw.publish_single(channel, raw_queue, payload, 100)
            for _ in range(ROUNDS):
                for name, loop in loops.items():
                    seconds[name] += await timed(loop)
    finally:
        await connection.close()
    rates = {
        name: ROUNDS * (single_n if "single" in name else batch_n * rabbitmq_raw.BATCH) / spent
        for name, spent in seconds.items()
    }
    return [
        Row("enqueue single (confirmed)", "tasks/s", rates["single"], rates["raw_single"],
            ">= 50% of raw", rates["single"] >= 0.5 * rates["raw_single"]),
        Row("enqueue batch 100 (confirmed)", "tasks/s", rates["batch"], rates["raw_batch"],
            ">= 30% of raw", rates["batch"] >= 0.3 * rates["raw_batch"]),
    ]  # fmt: skip


def _argv(bench: Bench, queue: str, concurrency: int, prefetch: int, max_tasks: int) -> list[str]:
    return [
        sys.executable, "-m", "asynctasq", "worker", "--import", "bench_tasks",
        "--queues", queue, "--concurrency", str(concurrency), "--max-tasks", str(max_tasks),
        "--log-level", "warning", "--driver", "rabbitmq", "--rabbitmq-url", bench.url,
        "--rabbitmq-exchange-name", bench.exchange, "--rabbitmq-prefetch-count", str(prefetch),
        "--env-file", str(bench.tmp / "no.env"),
    ]  # fmt: skip


async def run_worker(
    bench: Bench,
    queue: str,
    concurrency: int,
    prefetch: int,
    max_tasks: int,
    feed: Callable[[], Awaitable[None]] | None = None,
) -> WorkerRun:
    """Run one worker until it handled ``max_tasks`` (``feed()`` alongside); return it.

    Raises:
        BenchError: non-zero exit, no stats file, or no exit within the time limit.
    """
    stats_file = bench.tmp / f"{queue}.json"
    log_file = bench.tmp / f"{queue}.log"
    env = {**worker_env(), "BENCH_STATS_FILE": str(stats_file)}
    argv = _argv(bench, queue, concurrency, prefetch, max_tasks)
    with log_file.open("wb") as log:
        spawned = time.time()
        proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
        polled = 0
        try:
            feeder = asyncio.ensure_future(feed()) if feed is not None else None
            deadline = time.monotonic() + TIMEOUT_SECONDS * 2
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError(f"worker on {queue} did not finish in time")
                if feeder is not None and feeder.done():
                    feeder.result()
                polled = max(polled, read_hwm(proc.pid))
                await asyncio.sleep(0.05)
            exited = time.time()
            if feeder is not None:
                await feeder
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if proc.returncode != 0 or not stats_file.exists():
        tail = log_file.read_text(errors="replace")[-2000:]
        raise BenchError(f"worker on {queue} exited {proc.returncode}:\n{tail}")
    return WorkerRun(spawned, exited, json.loads(stats_file.read_text()), polled)


async def drain(bench: Bench, concurrency: int, prefetch: int) -> dict[str, float]:
    """Queue N no-op tasks, drain them through one worker; return its figures."""
    count = bench.sizes.drain
    queue = bench.queue(f"drain{concurrency}")
    async with bench.handle(queue, prefetch):
        for start in range(0, count, 1000):
            size = min(1000, count - start)
            await asynctasq.dispatch_many([bench_tasks.noop() for _ in range(size)])
    run = await run_worker(bench, queue, concurrency, prefetch, count)
    noop = run.stats["noop"]
    if noop["count"] != count:
        raise BenchError(f"drain c{concurrency}: {noop['count']} of {count} tasks ran")
    if left := await bench.left(queue):
        raise BenchError(f"drain c{concurrency}: {left} messages left after exit")
    return {
        "rate": (count - 1) / (noop["last"] - noop["first"]),
        "process_rate": count / (run.exited_at - run.spawned_at),
        "startup_s": noop["first"] - run.spawned_at,
        "shutdown_s": run.exited_at - noop["last"],
        "hwm_mib": run.stats["VmHWM"] / 1024,
    }


async def drain_rows(bench: Bench, payload: bytes) -> list[Row]:
    """Drain at c10/prefetch 10 and c100/prefetch 100 against the raw consume-and-ack."""
    c10 = await drain(bench, 10, 10)
    c100 = await drain(bench, 100, 100)
    ceilings = {}
    for prefetch in (10, 100):
        runs = [
            await rabbitmq_raw.consume_ack(
                bench.url,
                bench.queue(f"raw-drain{prefetch}-{n}"),
                payload,
                bench.sizes.drain,
                prefetch,
            )
            for n in range(RAW_RUNS)
        ]
        ceilings[prefetch] = sorted(runs)[RAW_RUNS // 2]  # the median run
    bench.figures["raw_drain_ack_multiple_100"] = await rabbitmq_raw.consume_ack(
        bench.url, bench.queue("raw-drain-multiple"), payload, bench.sizes.drain, 100, every=100
    )
    bench.figures["drain_c10"] = c10
    bench.figures["drain_c100"] = c100
    return [
        Row("drain c10 prefetch 10", "tasks/s", c10["rate"], ceilings[10], "-", None),
        Row("drain c100 prefetch 100", "tasks/s", c100["rate"], ceilings[100], ">= 25% of raw",
            c100["rate"] >= 0.25 * ceilings[100]),
    ]  # fmt: skip


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def latency_rows(bench: Bench, payload: bytes) -> list[Row]:
    """Dispatch ``stamp(now)`` every 10 ms to an idle worker; compare with a raw hand-over."""
    sizes = bench.sizes
    queue = bench.queue("latency")
    warm = 50

    async def feed() -> None:
        async with bench.handle(queue, 10):
            await bench_tasks.stamp(-1.0).dispatch()  # the worker is up once this one is gone
            limit = time.monotonic() + 20.0
            while await bench.left(queue):
                if time.monotonic() > limit:
                    raise BenchError("the latency worker never took its first task")
                await asyncio.sleep(0.05)
            loop = asyncio.get_running_loop()
            begin = loop.time()
            for number in range(warm + sizes.latency):
                pause = begin + number * sizes.interval - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                sent = time.time()
                await bench_tasks.stamp(sent if number >= warm else -1.0).dispatch()

    run = await run_worker(bench, queue, 10, 10, 1 + warm + sizes.latency, feed)
    ours = sorted((started - sent) * 1000.0 for sent, started in run.stats["stamps"] if sent > 0)
    if len(ours) != sizes.latency:
        raise BenchError(f"latency: {len(ours)} of {sizes.latency} stamps came back")
    raw = sorted(
        await rabbitmq_raw.publish_to_consume_ms(
            bench.url, bench.queue("raw-latency"), payload, sizes.latency, sizes.interval
        )
    )
    return [
        Row(f"latency {label}", "ms", percentile(ours, fraction), percentile(raw, fraction),
            "-", None, True)
        for label, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
    ]  # fmt: skip


PHASES = ("enqueue", "drain", "latency")


async def measure(
    url: str, sizes: Sizes, tmp: Path, phases: Sequence[str] = PHASES
) -> tuple[list[Row], dict[str, Any]]:
    """Run the phases once; return the rows and the side figures."""
    bench = Bench(url, sizes, tmp)
    connection = await aio_pika.connect(url)
    props = connection.transport.connection.server_properties if connection.transport else {}
    version = props.get("version", b"?") if isinstance(props, dict) else b"?"
    await connection.close()
    bench.figures["machine"] = {
        **machine(),
        "rabbitmq": version.decode() if isinstance(version, bytes) else str(version),
    }
    bench.figures["asynctasq"] = source()
    try:
        size = await bench.message_size()
        bench.figures["message_bytes"] = size
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
    return rows, bench.figures


def load_average() -> float:
    """Return the 1-minute load average (other work on the machine skews every figure)."""
    with open("/proc/loadavg", encoding="ascii") as loadavg:
        return float(loadavg.read().split()[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; return 0 (even with MISSes), 1 if it failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--only", metavar="PHASES", default=",".join(PHASES))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started, load_before = time.time(), load_average()
    with tempfile.TemporaryDirectory(prefix="asynctasq-bench-") as tmp:
        try:
            coro = measure(args.rabbitmq_url, sizes, Path(tmp), args.only.split(","))
            rows, figures = asynctasq.run(coro)
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
    m = figures["machine"]
    print(
        f"asynctasq RabbitMQ benchmark ({figures['mode']}), {figures['date']}, took "
        f"{figures['seconds']} s\n{m['cpus']} CPUs {m['cpu_model']}, Python {m['python']} "
        f"({m['loop']}), RabbitMQ {m['rabbitmq']}; load average "
        f"{figures['load_average']['before']} before, {figures['load_average']['after']} after\n"
        f"asynctasq: {figures['asynctasq']}; message body {figures.get('message_bytes')} bytes\n"
    )
    print(table(rows))
    for c in (10, 100):
        if (d := figures.get(f"drain_c{c}")) is not None:
            print(
                f"- drain c{c}: whole process {d['process_rate']:,.0f} tasks/s including "
                f"start-up {d['startup_s']:.2f} s and exit {d['shutdown_s']:.2f} s; "
                f"VmHWM {d['hwm_mib']:.1f} MiB"
            )
    if (batched := figures.get("raw_drain_ack_multiple_100")) is not None:
        print(f"- raw consume with one ack(multiple) per 100 messages: {batched:,.0f} msg/s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
