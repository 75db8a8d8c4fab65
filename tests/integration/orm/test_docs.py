"""docs/integrations.md runs as written: its app, worker script and test, from the docs alone."""

from __future__ import annotations

import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

APP_TEST = """
import httpx
import pytest

{queue_example}


@pytest.mark.anyio
async def test_the_dependencies_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCTASQ_DRIVER", "memory")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/queues/default")
    assert response.json() == {{"driver": "memory", "ready": 0, "delayed": 0}}
"""


RECEIPT_TEST = """
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

import asynctasq
from myapp import receipt
from myapp.db import Base, User, engine


@pytest.mark.anyio
async def test_a_receipt_for_a_deleted_user_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCTASQ_DRIVER", "memory")
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        user = User(email="cy@example.com")
        session.add(user)
        await session.commit()
    async with asynctasq.configured(sqlalchemy_engine=engine) as handle:
        await receipt.SendReceipt(user).dispatch()
        async with AsyncSession(engine) as session:
            await session.execute(delete(User).where(User.id == user.id))
            await session.commit()
        stats = await asynctasq.run_worker(
            handle, tasks=[receipt], max_tasks=1, handle_signals=False
        )
        [entry] = await (await handle.driver()).dead_letters("default")
    assert (stats.retried, stats.dead_lettered) == (0, 1)  # 5 attempts allowed, 1 used
    assert entry.error_type == "ModelNotFoundError"
"""


def python_blocks() -> list[str]:
    text = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{cwd}"},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def write_package(root: Path, name: str, files: dict[str, str]) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in files.items():
        (package / f"{module}.py").write_text(source)


@pytest.fixture
def docs_app(tmp_path: Path) -> Path:
    """The files of docs/integrations.md, laid out as the docs name them."""
    (
        db,
        tasks,
        main,
        worker,
        app_test,
        receipt,
        shop_models,
        shop_tasks,
        shop_main,
        shop_worker,
        shop_test,
        queues,
    ) = python_blocks()
    write_package(tmp_path, "myapp", {"db": db, "tasks": tasks, "main": main, "receipt": receipt})
    write_package(tmp_path, "shop", {"models": shop_models, "tasks": shop_tasks, "main": shop_main})
    (tmp_path / "worker.py").write_text(worker)
    (tmp_path / "shop_worker.py").write_text(shop_worker)
    (tmp_path / "test_myapp.py").write_text(app_test)
    (tmp_path / "test_shop.py").write_text(shop_test)
    (tmp_path / "test_receipt.py").write_text(RECEIPT_TEST)
    (tmp_path / "test_queues.py").write_text(APP_TEST.format(queue_example=queues))
    return tmp_path


def test_the_docs_apps_their_tests_and_examples_run_as_written(docs_app: Path) -> None:
    done = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"], docs_app
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


@pytest.mark.parametrize("script", ["worker.py", "shop_worker.py"])
def test_a_documented_worker_script_logs_at_info(docs_app: Path, script: str) -> None:
    """Started as documented, a worker says it started (INFO), as the CLI's would."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{docs_app}"}
    worker = subprocess.Popen(
        [sys.executable, script],
        cwd=docs_app,
        env={**env, "ASYNCTASQ_DRIVER": "memory"},
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert worker.stderr is not None
    output = b""
    deadline = time.monotonic() + 60  # a bound, not a measurement: it starts in ~1 s
    try:
        while b" started: " not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([worker.stderr], [], [], deadline - time.monotonic())
            chunk = worker.stderr.read(4096) if ready else b""
            if not chunk:  # exited, or silent until the deadline
                break
            output += chunk
    finally:
        worker.kill()
        worker.wait(timeout=30)
        worker.stderr.close()
    text = output.decode()
    assert " INFO asynctasq.worker: worker " in text, text
    assert " started: driver=memory queues=default" in text
