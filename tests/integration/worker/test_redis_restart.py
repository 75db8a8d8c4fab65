"""A Redis restart mid-run: the worker reconnects and finishes the work (C09).

The test runs its own ``redis-server`` on a free port (append-only file in the test's
directory, so data survives the restart) and stops and restarts only that process.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from asynctasq.handle import configured
from asynctasq.tasks import dispatch_many
from tests.integration.conftest import IN_CI, reachable
from tests.integration.worker import tasks_mod
from tests.integration.worker.conftest import Ledger, Worker, worker_env

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class OwnRedis:
    """A redis-server this test started, that it may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--dir", str(self.directory), "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", self.port, 0.2):
            assert time.monotonic() < deadline, "our redis-server did not come up"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path, redis_url: str) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        reason = "the redis-server binary is not installed"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def test_the_worker_survives_a_redis_restart_and_finishes_everything(
    own_redis: OwnRedis, ledger: Ledger, start_worker: Callable[..., Worker]
) -> None:
    queue = "restart"
    async with configured(driver="redis", redis={"url": own_redis.url}):
        long_ids = await dispatch_many(
            [tasks_mod.slow(ledger.key, 3, label="long").on_queue(queue) for _ in range(4)]
        )
        delayed_ids = await dispatch_many(
            [tasks_mod.record(ledger.key, "delayed").on_queue(queue).delay(3) for _ in range(2)]
        )
    worker = start_worker("--queues", queue, "--concurrency", "4", env=worker_env(own_redis.url))
    await ledger.wait_for(lambda rows: len(rows) == 4, 15)
    own_redis.stop()
    await asyncio.sleep(4)
    outage_end = time.time()
    own_redis.start()

    rows = await ledger.wait_for(
        lambda rows: (
            sum(r["event"] == "run" for r in rows) == 2
            and sum(r["event"] == "end" for r in rows) == 4
        ),
        20,
    )
    assert worker.process.poll() is None  # the same process is still running
    ends = Counter(r["task_id"] for r in rows if r["event"] == "end")
    assert ends == Counter(dict.fromkeys(long_ids, 1))
    starts = Counter(r["task_id"] for r in rows if r["event"] == "start")
    assert starts == Counter(dict.fromkeys(long_ids, 1))
    runs = [r for r in rows if r["event"] == "run"]
    assert sorted(r["task_id"] for r in runs) == sorted(delayed_ids)
    assert max(r["t"] for r in runs) <= outage_end + 5 + 3

    async with configured(driver="redis", redis={"url": own_redis.url}):
        fresh = await dispatch_many(
            [tasks_mod.record(ledger.key, "fresh").on_queue(queue) for _ in range(10)]
        )
    rows = await ledger.wait_for(
        lambda rows: sum(r.get("label") == "fresh" for r in rows) == 10, 10
    )
    assert sorted(r["task_id"] for r in rows if r.get("label") == "fresh") == sorted(fresh)
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert "Traceback" not in worker.output()
