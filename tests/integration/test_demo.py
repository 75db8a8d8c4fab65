"""README's main-job command: the demo runs four real tasks through a real worker.

On Redis, and on SQLite (the main job's command: ``ASYNCTASQ_DRIVER=sqlite python -m
asynctasq.demo``), where it creates its tables in a temporary file first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("driver", ["redis", "sqlite"])
def test_demo_reports_every_task_as_expected(driver: str, request: pytest.FixtureRequest) -> None:
    # README's main job runs it on SQLite: no server at all (ASYNCTASQ_DRIVER=sqlite).
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    if driver == "redis":
        request.getfixturevalue("redis_url")
    else:
        env["ASYNCTASQ_DRIVER"] = driver
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "asynctasq.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert len(table) == 4
    assert all(line.rstrip().endswith("│ yes │") for line in table), done.stdout
    assert "attempt 1 failed, attempt 2 succeeded" in done.stdout
    assert "dead letter: DemoError: this task always fails (2 attempts)" in done.stdout
    assert "Traceback" not in done.stderr
