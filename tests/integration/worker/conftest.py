"""Worker subprocesses on a real broker, unique queues, and a ledger in Redis db 14.

The broker is Redis unless a test is marked ``@on_brokers`` (:mod:`targets`): then it runs
once per broker, and ``queue``, ``handle``, ``start_worker`` and ``queue_sizes`` follow it.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis
from redis.asyncio import Redis

from asynctasq.handle import Handle, configured
from tests.integration.worker.targets import MAINTENANCE_SECONDS, TARGETS, Sizes, Target
from tests.integration.worker.tasks_mod import LEDGER_URL

REPO_ROOT = Path(__file__).resolve().parents[3]
TASKS_MODULE = "tests.integration.worker.tasks_mod"


@attrs.define
class Worker:
    """A worker subprocess and where its output goes."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def wait(self, seconds: float) -> int:
        """Return the exit code within ``seconds``; else fail showing the worker's log tail.

        A worker still running is sent SIGUSR1 first: a worker importing ``tasks_mod``
        then writes its thread and asyncio task stacks to the log, shown in the failure.
        """
        try:
            return self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # tasks_mod dumps its stacks to the log
            time.sleep(1.0)
            tail = "\n".join(self.output().splitlines()[-150:])
            raise AssertionError(
                f"worker {self.pid} still running after {seconds} s; its log ends:\n{tail}"
            ) from None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def logged_at(self, text: str) -> float:
        """Return when the first log line containing ``text`` was written (epoch seconds).

        Raises:
            AssertionError: no such line yet.
        """
        for line in self.output().splitlines():
            if text in line:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
                return stamp.timestamp()  # the log's asctime is local time
        raise AssertionError(f"no log line contains {text!r}:\n{self.output()}")


@attrs.define
class Ledger:
    """Rows the tasks wrote to the ledger list ``key`` (Redis db 14)."""

    key: str
    client: redis.Redis

    def rows(self, event: str | None = None) -> list[dict[str, Any]]:
        found = [json.loads(raw) for raw in self.client.lrange(self.key, 0, -1)]
        return [row for row in found if event is None or row["event"] == event]

    async def wait_for(
        self, check: Callable[[list[dict[str, Any]]], bool], seconds: float
    ) -> list[dict[str, Any]]:
        """Poll until ``check(rows)`` holds; fail the test after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            rows = self.rows()
            if check(rows):
                return rows
            if time.monotonic() > deadline:
                pytest.fail(f"ledger condition not met within {seconds} s; rows: {rows}")
            await asyncio.sleep(0.05)


@pytest.fixture
def broker_name(request: pytest.FixtureRequest) -> str:
    """The broker under test: ``redis``, or the ``@on_brokers`` parameter."""
    return str(getattr(request, "param", "redis"))


@pytest.fixture
def target(broker_name: str, request: pytest.FixtureRequest) -> Target:
    """How this test's workers and handle reach its broker (skips if it is down)."""
    return TARGETS[broker_name](request)


@pytest.fixture
def queue(target: Target) -> Iterator[str]:
    """A queue name no other test uses; what it left on the broker is removed afterwards."""
    name = f"w-{uuid.uuid4().hex[:12]}"
    yield name
    target.cleanup(name)


@pytest.fixture
def queue_sizes(target: Target) -> Sizes:
    """``await queue_sizes(queue)``: ready, in-flight, delayed and dead counts on the broker."""
    return target.sizes


@pytest.fixture
def ledger(redis_url: str) -> Iterator[Ledger]:
    key = f"ledger-{uuid.uuid4().hex[:12]}"
    client = redis.Redis.from_url(LEDGER_URL)
    yield Ledger(key, client)
    client.delete(key, *client.keys(f"{key}:*"))
    client.close()


def target_env(target: Target, **extra: str) -> dict[str, str]:
    """Return the environment of a worker subprocess on ``target``'s broker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    env.update(PYTHONPATH=str(REPO_ROOT), LEDGER_URL=LEDGER_URL)
    env.update(target.variables)
    env.update(extra)
    return env


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Return the environment of a worker subprocess on the Redis at ``redis_url``."""
    variables = {
        "ASYNCTASQ_DRIVER": "redis",
        "ASYNCTASQ_REDIS_URL": redis_url,
        "ASYNCTASQ_REDIS_DELAYED_TASK_INTERVAL": str(MAINTENANCE_SECONDS),
    }
    return target_env(Target("redis", variables, {}, _no_sizes, _no_cleanup), **extra)


async def _no_sizes(queue: str) -> dict[str, int]:
    raise NotImplementedError(queue)


def _no_cleanup(queue: str) -> None:
    del queue


@pytest.fixture
def start_worker(target: Target, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start ``python -m asynctasq worker --import tasks_mod ARGS``; kill leftovers at the end."""
    started: list[Worker] = []

    def start(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "asynctasq", "worker", "--import", TASKS_MODULE, *args],
                cwd=cwd,
                env=env or target_env(target),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(10)


@pytest.fixture
async def handle(target: Target) -> AsyncIterator[Handle]:
    """The test's own handle on the same broker, for dispatching and inspection."""
    async with configured(driver=target.name, **{target.name: dict(target.settings)}) as opened:
        yield opened


async def queue_keys(redis_url: str, queue: str) -> dict[str, int]:
    """Return how many messages each of the queue's keys holds."""
    async with Redis.from_url(redis_url) as client:
        return {
            "ready": await client.llen(f"queue:{queue}"),
            "in_flight": await client.zcard(f"queue:{queue}:processing"),
            "delayed": await client.zcard(f"queue:{queue}:delayed"),
            "dead": await client.llen(f"queue:{queue}:dead"),
        }
