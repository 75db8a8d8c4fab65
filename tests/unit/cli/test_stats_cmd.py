"""``asynctasq stats``: the table and the JSON, on the in-process memory driver."""

from __future__ import annotations

import json
from collections.abc import Callable

from conftest import Result
from syrupy.assertion import SnapshotAssertion

from asynctasq.cli.stats_cmd import render
from asynctasq.drivers.protocol import WorkerInfo
from asynctasq.monitoring.stats import QueueStats, Snapshot

Cli = Callable[..., Result]

NOW = 1_738_324_800.0  # 2025-01-31T12:00:00Z


def test_stats_of_an_empty_broker_lists_the_default_queue(
    cli: Cli, snapshot: SnapshotAssertion
) -> None:
    result = cli("stats", "--driver", "memory")
    assert (result.code, result.err) == (0, "")
    assert result.out == snapshot


def test_stats_json_has_the_queues_workers_and_notes(cli: Cli) -> None:
    result = cli("stats", "--driver", "memory", "--queues", "a, b", "--json")
    assert result.code == 0
    found = json.loads(result.out)
    assert found["driver"] == "memory"
    assert found["queues"] == [
        {"queue": "a", "ready": 0, "delayed": 0, "in_flight": 0, "dead": 0, "completed": 0},
        {"queue": "b", "ready": 0, "delayed": 0, "in_flight": 0, "dead": 0, "completed": 0},
    ]
    assert (found["workers"], found["notes"]) == ([], [])
    assert found["taken_at"].endswith("+00:00")


def test_a_bad_queue_list_is_a_usage_error(cli: Cli) -> None:
    result = cli("stats", "--driver", "memory", "--queues", "a,,b")
    assert result.code == 2
    assert "--queues must list queue names" in result.err


def test_an_unreachable_broker_is_one_line_and_exit_1(cli: Cli) -> None:
    result = cli("stats", "--redis-url", "redis://127.0.0.1:1")
    assert result.code == 1
    assert result.err.startswith("asynctasq stats: error: redis ")
    assert "Traceback" not in result.err


def test_the_plain_table_shows_workers_notes_and_heartbeat_age(
    snapshot: SnapshotAssertion,
) -> None:
    found = Snapshot(
        driver="redis",
        taken_at=NOW,
        queues=(
            QueueStats("default", 12, 3, 4, 1, None),
            QueueStats("emails", 0, 0, 1, 0, None),
        ),
        workers=(
            WorkerInfo(
                "web-1-4242-a1b2c3",
                "web-1",
                4242,
                ("emails", "default"),
                10,
                "redis",
                NOW - 3600,
                NOW - 4.2,
                2,
                1500,
                7,
            ),
        ),
        notes=("the sqs driver does not report kept completed tasks",),
    )
    text = render(found, terminal=False)
    assert all(line == line.rstrip() for line in text.splitlines())
    assert text == snapshot
