"""``asynctasq dlq`` on PostgreSQL, MySQL and SQLite: every entry can be addressed.

A dead letter whose message could not be decoded has no task id (``dlq list`` shows
``-``); its position in the list names it. The dead letters are made by a real worker.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asynctasq import configured, run_worker, task
from asynctasq.cli.main import main
from asynctasq.config.resolve import resolve
from asynctasq.drivers.protocol import Outgoing
from tests.integration.sql_servers import (
    SQL_DRIVERS,
    drop,
    environment,
    group_settings,
    migrate,
    require_server,
)

GARBAGE = b"\x00not a message"


@task(max_attempts=1)
async def fail(n: int) -> None:
    raise ConnectionError("the mail server is down")


@pytest.fixture(params=SQL_DRIVERS)
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    """Migrated tables of their own; the CLI finds them through ``ASYNCTASQ_*`` variables."""
    name: str = request.param
    require_server(name)
    settings = group_settings(name, tmp_path)
    overrides = {"driver": name, name: settings}
    asyncio.run(migrate(resolve(overrides, environ={}).config, name))
    for key in [k for k in os.environ if k.startswith("ASYNCTASQ_")]:
        monkeypatch.delenv(key)
    for key, value in environment(name, settings).items():
        monkeypatch.setenv(key, value)
    yield overrides
    asyncio.run(drop(name, settings))


def dead_letter_garbage_then_a_task(overrides: dict[str, Any]) -> str:
    """Dead-letter an undecodable message, then a failing task; return the task's id."""

    async def go() -> str:
        async with configured(overrides) as handle:
            driver = await handle.driver()
            await driver.enqueue(Outgoing("q", GARBAGE))
            await run_worker(handle, tasks=[fail], queues=["q"], max_tasks=1, handle_signals=False)
            task_id = await fail(1).on_queue("q").dispatch()
            await run_worker(handle, tasks=[fail], queues=["q"], max_tasks=1, handle_signals=False)
            return task_id

    return asyncio.run(go())


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """Run ``asynctasq dlq ACTION --queue q ...`` (the options before a ``--``)."""
    command, action, *rest = argv
    code = main([command, action, "--queue", "q", "--env-file", str(tmp_path / "none.env"), *rest])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_dead_letter_without_a_task_id_is_shown_and_requeued_by_its_position(
    database: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    task_id = dead_letter_garbage_then_a_task(database)

    code, out, _ = cli(capsys, tmp_path, "dlq", "list")
    assert code == 0
    header, first, second = out.splitlines()[2:]
    assert header.split()[:3] == ["#", "TASK", "ID"]
    assert first.split()[:3] == ["1", "-", "-"]
    assert second.split()[:2] == ["2", task_id]

    code, _, err = cli(capsys, tmp_path, "dlq", "show", "--", "-")
    assert code == 1
    assert "an entry listed with task id '-' has none: use --position N" in err

    code, out, _ = cli(capsys, tmp_path, "dlq", "show", "--position", "1", "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["task_id"], shown["error_type"]) == ("", "SerializationError")
    code, out, _ = cli(capsys, tmp_path, "dlq", "show", "--position", "2")
    assert code == 0
    assert f"task_id         {task_id}" in out
    code, _, err = cli(capsys, tmp_path, "dlq", "show", "--position", "3")
    assert code == 1
    assert "no dead letter at position 3 on queue 'q' (it has 2; see dlq list)" in err

    code, out, err = cli(capsys, tmp_path, "dlq", "requeue", "--position", "1")
    assert (code, err) == (0, "")
    assert out == "Requeued 1 dead letter(s) on queue 'q' (attempt count reset).\n"
    code, out, _ = cli(capsys, tmp_path, "dlq", "list", "--json")
    assert [(e["position"], e["task_id"]) for e in json.loads(out)] == [(1, task_id)]


def test_entries_without_a_task_id_are_requeued_together_or_not_at_all(
    database: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dead_letter_garbage_then_a_task(database)
    dead_letter_garbage_then_a_task(database)  # positions: 1 -, 2 task, 3 -, 4 task

    code, _, err = cli(capsys, tmp_path, "dlq", "requeue", "--position", "3")
    assert code == 2
    assert "without a task id on queue 'q' (positions 1, 3) can only be requeued together" in err
    code, out, _ = cli(capsys, tmp_path, "dlq", "list", "--json")
    assert len(json.loads(out)) == 4

    code, out, _ = cli(capsys, tmp_path, "dlq", "requeue", "--position", "3", "--position", "1")
    assert (code, out) == (0, "Requeued 2 dead letter(s) on queue 'q' (attempt count reset).\n")
    code, out, _ = cli(capsys, tmp_path, "dlq", "list", "--json")
    assert [e["position"] for e in json.loads(out)] == [1, 2]
    assert all(e["task_id"] for e in json.loads(out))
