"""Tasks defined in a script run as ``__main__`` reach a worker under an importable name (C24)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.worker.conftest import Ledger, Worker, worker_env

pytestmark = pytest.mark.anyio

TASK_SOURCE = """
import asyncio
import json
import os
import sys

import redis

from asynctasq import init, task


@task
async def hello(key: str) -> None:
    with redis.Redis.from_url(os.environ["LEDGER_URL"]) as ledger:
        ledger.rpush(key, json.dumps({"event": "run", "module": __name__}))


async def send(key: str, queue: str) -> None:
    async with init():
        print(hello.name)
        await hello(key).on_queue(queue).dispatch()


if __name__ == "__main__":
    asyncio.run(send(sys.argv[1], sys.argv[2]))
"""

SENDER_SOURCE = """
import asyncio
import sys

from pkg.sub.tasks import send

asyncio.run(send(sys.argv[1], sys.argv[2]))
"""


def run_python(args: list[str], cwd: Path, redis_url: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=worker_env(redis_url),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def run_with_worker(
    module: str, cwd: Path, queue: str, ledger: Ledger, start: Callable[..., Worker]
) -> list[dict[str, object]]:
    worker = start("--import", module, "--queues", queue, cwd=cwd)
    rows = await ledger.wait_for(lambda rows: len(rows) == 1, 15)
    worker.signal(signal.SIGTERM)
    assert worker.wait(10) == 0
    return rows


async def test_a_task_in_a_script_run_by_path_is_named_after_the_script(
    tmp_path: Path, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    (tmp_path / "producer.py").write_text(TASK_SOURCE)
    name = run_python(["producer.py", ledger.key, queue], tmp_path, redis_url)
    assert name == "producer:hello"
    rows = await run_with_worker("producer", tmp_path, queue, ledger, start_worker)
    assert rows[0]["module"] == "producer"


async def test_a_task_in_a_module_run_with_dash_m_is_named_after_the_module(
    tmp_path: Path, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "main.py").write_text(TASK_SOURCE)
    name = run_python(["-m", "pkg.main", ledger.key, queue], tmp_path, redis_url)
    assert name == "pkg.main:hello"
    rows = await run_with_worker("pkg.main", tmp_path, queue, ledger, start_worker)
    assert rows[0]["module"] == "pkg.main"


async def test_a_task_in_a_package_dispatched_from_a_dash_m_script_resolves(
    tmp_path: Path, queue: str, ledger: Ledger, start_worker: Callable[..., Worker], redis_url: str
) -> None:
    sub = tmp_path / "pkg" / "sub"
    sub.mkdir(parents=True)
    for init in (tmp_path / "pkg" / "__init__.py", sub / "__init__.py"):
        init.write_text("")
    (sub / "tasks.py").write_text(TASK_SOURCE)
    (tmp_path / "pkg" / "main.py").write_text(SENDER_SOURCE)
    name = run_python(["-m", "pkg.main", ledger.key, queue], tmp_path, redis_url)
    assert name == "pkg.sub.tasks:hello"
    rows = await run_with_worker("pkg.sub.tasks", tmp_path, queue, ledger, start_worker)
    assert rows[0]["module"] == "pkg.sub.tasks"


def test_a_task_from_python_c_is_refused_at_dispatch_with_the_fix(
    tmp_path: Path, queue: str, redis_url: str
) -> None:
    code = TASK_SOURCE.replace('if __name__ == "__main__":', "if True:")
    done = subprocess.run(
        [sys.executable, "-c", code, "k", queue],
        cwd=tmp_path,
        env=worker_env(redis_url),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode != 0
    assert "ConfigError" in done.stderr
    assert "--import" in done.stderr
