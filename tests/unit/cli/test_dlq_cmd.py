"""``asynctasq dlq``: usage rules and refusals (the broker work is in the integration tests)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from conftest import Result
from syrupy.assertion import SnapshotAssertion

from asynctasq.cli.dlq_cmd import entry_json, render_entry, render_list
from asynctasq.drivers.protocol import DeadLetterEntry
from asynctasq.message import TaskMessage, encode

Cli = Callable[..., Result]

MESSAGE = TaskMessage(
    "3f2a9c", "app.tasks:send", ("a@example.com",), {"retry": True}, "emails", 3, 3,
    "exponential", 60.0, None, 3600.0, "req-9", 1_738_324_700.0,
)  # fmt: skip
ENTRY = DeadLetterEntry(
    "emails", encode(MESSAGE), "3f2a9c", "app.tasks:send", "ConnectionError",
    "the mail server is down\nsecond line", 3, 1_738_324_800.0,
)  # fmt: skip


def test_dlq_help_lists_the_actions(cli: Cli, snapshot: SnapshotAssertion) -> None:
    result = cli("dlq", "--help")
    assert result.code == 0
    assert result.out == snapshot


def test_purge_without_yes_and_without_a_terminal_refuses_with_exit_2(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    result = cli("dlq", "purge", "--queue", "emails", "--driver", "memory")
    assert result.code == 2
    assert result.err == (
        "asynctasq dlq: error: refusing to purge the dead letters of queue 'emails' without "
        "confirmation: stdin is not a terminal; pass --yes to purge\n"
    )


def test_purge_with_yes_of_an_empty_queue_says_so(cli: Cli) -> None:
    result = cli("dlq", "purge", "--queue", "emails", "--driver", "memory", "--yes")
    assert (result.code, result.out) == (0, "No dead letters on queue 'emails'.\n")


def test_requeue_needs_task_ids_or_all_not_both(cli: Cli) -> None:
    for argv in ([], ["t1", "--all"], ["--position", "1", "--all"]):
        result = cli("dlq", "requeue", "--queue", "q", "--driver", "memory", *argv)
        assert result.code == 2
        assert "give the task ids (or --position) to requeue, or --all (not both)" in result.err


def test_show_needs_a_task_id_or_a_position_not_both(cli: Cli) -> None:
    for argv in ([], ["t1", "--position", "1"]):
        result = cli("dlq", "show", "--queue", "q", "--driver", "memory", *argv)
        assert (result.code, result.err) == (
            2,
            "asynctasq dlq: error: dlq show: give a task id or --position N (one of them)\n",
        )


@pytest.mark.parametrize("position", ["0", "first", "-1"])
def test_a_position_is_a_whole_number_from_1(cli: Cli, position: str) -> None:
    for action in ("show", "requeue"):
        result = cli("dlq", action, "--queue", "q", "--driver", "memory", f"--position={position}")
        assert (result.code, result.err) == (
            2,
            f"asynctasq dlq: error: --position must be a whole number >= 1, got {position!r}\n",
        )


def test_a_position_past_the_end_is_no_such_entry(cli: Cli) -> None:
    result = cli("dlq", "show", "--queue", "q", "--driver", "memory", "--position", "1")
    assert (result.code, result.err) == (
        1,
        "asynctasq dlq: error: no dead letter at position 1 on queue 'q' "
        "(it has 0; see dlq list)\n",
    )


def test_queue_is_required(cli: Cli) -> None:
    result = cli("dlq", "list", "--driver", "memory")
    assert result.code == 2
    assert "--queue" in result.err


def test_a_bad_limit_is_a_usage_error(cli: Cli) -> None:
    result = cli("dlq", "list", "--queue", "q", "--driver", "memory", "--limit", "0")
    assert (result.code, result.err) == (
        2,
        "asynctasq dlq: error: --limit must be a whole number >= 1, got '0'\n",
    )


def test_list_and_show_on_an_empty_queue(cli: Cli) -> None:
    listed = cli("dlq", "list", "--queue", "q", "--driver", "memory")
    assert (listed.code, listed.out) == (0, "No dead letters on queue 'q'.\n")
    shown = cli("dlq", "show", "--queue", "q", "--driver", "memory", "nope")
    assert (shown.code, shown.err) == (
        1,
        "asynctasq dlq: error: no dead letter with task id 'nope' on queue 'q'\n",
    )


def test_the_list_table_is_one_line_per_entry(snapshot: SnapshotAssertion) -> None:
    garbage = DeadLetterEntry("emails", b"\xff", "", "", "SerializationError", "x" * 80, 1, 0.0)
    assert render_list([ENTRY, garbage], "emails") == snapshot


def test_show_prints_the_entry_and_its_decoded_message(snapshot: SnapshotAssertion) -> None:
    assert render_entry(ENTRY) == snapshot


def test_show_of_an_undecodable_entry_prints_its_stored_bytes() -> None:
    # the docs say raw bytes are kept; show printed only "unreadable <reason>"
    garbage = DeadLetterEntry(
        "emails", b"hello \xff\x00 not msgpack", "", "", "SerializationError", "x", 1, 0.0
    )
    lines = render_entry(garbage).splitlines()
    assert lines[-3:] == [
        "unreadable     cannot decode: ExtraData: unpack(b) received extra data.",
        "body_bytes     20",
        "body           b'hello \\xff\\x00 not msgpack'",
    ]


def test_a_long_undecodable_body_is_cut_saying_how_much_is_left() -> None:
    garbage = DeadLetterEntry("q", b"\xc1" * 2000, "", "", "SerializationError", "x", 1, 0.0)
    shown = entry_json(garbage, with_message=True)["message"]
    assert shown["body_bytes"] == 2000
    assert shown["body"] == repr(b"\xc1" * 512) + " ... and 1488 more bytes"
