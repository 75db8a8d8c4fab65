"""asynctasq on SQS served by moto: dispatch and drain figures, for regressions only.

moto is not a performance reference (every call scans its whole queue, and it runs in
Python): these figures only show whether the SQS driver got slower than before, next to
plain aioboto3 doing the same SQS calls on the same server in the same run. Run from the
repository root (not a test; pytest does not collect it)::

    .venv/bin/python benchmarks/sqs_bench.py            # about a minute
    .venv/bin/python benchmarks/sqs_bench.py --json out.json

It starts its own moto server on a free loopback port (``--endpoint URL`` uses a running
one) and deletes its queues at the end. Figures, each with its raw aioboto3 ceiling:

* dispatch single: ``await noop().dispatch()`` in a loop / ``send_message`` in a loop;
* dispatch batch: ``dispatch_many([noop() x 100])`` / ``send_message_batch`` x 10;
* drain c10 / c100: N queued no-op tasks through one ``python -m asynctasq worker`` at
  that concurrency, first task's start to the last one's / ``receive_message`` (10,
  long poll) + ``delete_message_batch`` in a loop, 4 consumers.
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
from pathlib import Path
from typing import Any

import aioboto3

import asynctasq

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for path in (HERE, REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import bench_tasks  # noqa: E402
from bench_report import Row, machine, table  # noqa: E402
from bench_worker import BenchError, worker_env  # noqa: E402

from tests.integration import sqs_server  # noqa: E402

SINGLE = 300
BATCH_ROUNDS = 10
DRAIN = 1_000
TIMEOUT_SECONDS = 120.0


def _client(endpoint: str) -> Any:
    session = aioboto3.Session(
        aws_access_key_id=sqs_server.KEY_ID,
        aws_secret_access_key=sqs_server.SECRET,
        region_name=sqs_server.REGION,
    )
    return session.client("sqs", endpoint_url=endpoint)


async def raw_single(endpoint: str, url: str, count: int) -> float:
    async with _client(endpoint) as sqs:
        began = time.perf_counter()
        for _ in range(count):
            await sqs.send_message(QueueUrl=url, MessageBody="eA==")
        return count / (time.perf_counter() - began)


async def raw_batch(endpoint: str, url: str, rounds: int) -> float:
    entries = [{"Id": str(i), "MessageBody": "eA=="} for i in range(10)]
    async with _client(endpoint) as sqs:
        began = time.perf_counter()
        for _ in range(rounds * 10):
            await sqs.send_message_batch(QueueUrl=url, Entries=entries)
        return rounds * 100 / (time.perf_counter() - began)


async def raw_drain(endpoint: str, url: str, count: int) -> float:
    async with _client(endpoint) as sqs:
        entries = [{"Id": str(i), "MessageBody": "eA=="} for i in range(10)]
        await asyncio.gather(
            *(sqs.send_message_batch(QueueUrl=url, Entries=entries) for _ in range(count // 10))
        )
        done = 0

        async def consume() -> None:
            nonlocal done
            while done < count:
                got = await sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
                messages = got.get("Messages", [])
                if messages:
                    handles = [
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ]
                    await sqs.delete_message_batch(QueueUrl=url, Entries=handles)
                    done += len(messages)

        began = time.perf_counter()
        await asyncio.gather(*(consume() for _ in range(4)))
        return count / (time.perf_counter() - began)


async def ours_single(queue: str, count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        await bench_tasks.noop().on_queue(queue).dispatch()
    return count / (time.perf_counter() - began)


async def ours_batch(queue: str, rounds: int) -> float:
    began = time.perf_counter()
    for _ in range(rounds):
        await asynctasq.dispatch_many([bench_tasks.noop().on_queue(queue) for _ in range(100)])
    return rounds * 100 / (time.perf_counter() - began)


async def ours_drain(endpoint: str, tmp: Path, queue: str, count: int, concurrency: int) -> float:
    for start in range(0, count, 500):
        batch = [bench_tasks.noop().on_queue(queue) for _ in range(min(500, count - start))]
        await asynctasq.dispatch_many(batch)
    stats_file = tmp / f"{queue}.json"
    env = {**worker_env(), **sqs_server.sqs_env(endpoint), "BENCH_STATS_FILE": str(stats_file)}
    argv = [
        sys.executable, "-m", "asynctasq", "worker", "--import", "bench_tasks",
        "--queues", queue, "--concurrency", str(concurrency), "--max-tasks", str(count),
        "--log-level", "warning",
    ]  # fmt: skip
    log = tmp / f"{queue}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: ASYNC220
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                raise BenchError(f"worker on {queue} did not finish in {TIMEOUT_SECONDS} s")
            await asyncio.sleep(0.05)
    if proc.returncode != 0 or not stats_file.exists():
        raise BenchError(f"worker exited {proc.returncode}:\n{log.read_text()[-2000:]}")
    noop = json.loads(stats_file.read_text())["noop"]
    if noop["count"] != count:
        raise BenchError(f"worker ran {noop['count']} of {count} tasks")
    return count / (noop["last"] - noop["first"])


async def run(endpoint: str, tmp: Path) -> tuple[list[Row], dict[str, Any]]:
    run_id = uuid.uuid4().hex[:8]
    prefix = f"{endpoint}/{sqs_server.ACCOUNT}/"
    names = [f"bench-{run_id}-{n}" for n in range(8)]
    target = "regressions only"
    rows: list[Row] = []
    try:
        async with _client(endpoint) as sqs:
            for name in names[4:]:
                await sqs.create_queue(QueueName=name)
        async with asynctasq.configured(driver="sqs", sqs=sqs_server.sqs_settings(endpoint)):
            single = await ours_single(names[0], SINGLE)
            raw = await raw_single(endpoint, prefix + names[4], SINGLE)
            rows.append(Row("dispatch single", "tasks/s", single, raw, target, None))
            batch = await ours_batch(names[1], BATCH_ROUNDS)
            raw = await raw_batch(endpoint, prefix + names[5], BATCH_ROUNDS)
            rows.append(Row("dispatch batch 100", "tasks/s", batch, raw, target, None))
            raw = await raw_drain(endpoint, prefix + names[6], DRAIN)
            for concurrency, queue in ((10, names[2]), (100, names[3])):
                drained = await ours_drain(endpoint, tmp, queue, DRAIN, concurrency)
                rows.append(Row(f"drain c{concurrency}", "tasks/s", drained, raw, target, None))
    finally:
        sqs_server.delete_queues(endpoint, names)
    return rows, machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="a running moto/SQS endpoint (default: start moto)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    endpoint = args.endpoint or sqs_server.moto_endpoint()
    with tempfile.TemporaryDirectory() as tmp:
        rows, host = asyncio.run(run(endpoint, Path(tmp)))
    print(f"SQS on moto ({endpoint}); {host}")
    print(f"sizes: dispatch single {SINGLE}, batch {BATCH_ROUNDS} x 100, drain {DRAIN}")
    print(table(rows))
    if args.json:
        figures = [{"name": r.name, "value": r.value, "ceiling": r.ceiling} for r in rows]
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
