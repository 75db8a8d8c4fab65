"""docs/integrations.md runs as written: its app, worker script and test, from the docs alone."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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


def python_blocks() -> list[str]:
    text = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_docs_app_its_test_and_its_examples_run_as_written(tmp_path: Path) -> None:
    db, tasks, main, worker, app_test, receipt, tortoise_init, tortoise_task, queues = (
        python_blocks()
    )
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "db.py").write_text(db)
    (package / "tasks.py").write_text(tasks)
    (package / "main.py").write_text(main)
    (package / "receipt.py").write_text(receipt)
    (tmp_path / "worker.py").write_text(worker)
    (tmp_path / "test_myapp.py").write_text(app_test)
    (tmp_path / "test_queues.py").write_text(APP_TEST.format(queue_example=queues))
    for name, source in [("tortoise_init", tortoise_init), ("tortoise_task", tortoise_task)]:
        compile(source, name, "exec")  # they need a Tortoise app: checked for syntax only
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{tmp_path}"},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    imported = subprocess.run(
        [sys.executable, "-c", "import worker, myapp.receipt"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT}:{tmp_path}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
