"""The command line's shape: subcommands, --help everywhere, exit codes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import Result
from syrupy.assertion import SnapshotAssertion

from asynctasq.cli.main import COMMANDS, build_parser

Cli = Callable[..., Result]


def test_main_help(cli: Cli, snapshot: SnapshotAssertion) -> None:
    result = cli("--help")
    assert result.code == 0
    assert result.out == snapshot


def test_config_help(cli: Cli, snapshot: SnapshotAssertion) -> None:
    result = cli("config", "--help")
    assert result.code == 0
    assert result.out == snapshot


def test_publish_help(cli: Cli, snapshot: SnapshotAssertion) -> None:
    result = cli("publish", "--help")
    assert result.code == 0
    assert result.out == snapshot


def test_every_command_is_registered_and_has_help(cli: Cli) -> None:
    parser = build_parser()
    assert len(COMMANDS) >= 2
    for name in ("config", "publish"):
        assert name in parser.format_help()
        assert cli(name, "--help").code == 0


def test_no_command_is_a_usage_error(cli: Cli) -> None:
    result = cli()
    assert result.code == 2
    assert "the following arguments are required: COMMAND" in result.err


def test_an_unknown_command_is_a_usage_error(cli: Cli) -> None:
    result = cli("wrok")
    assert result.code == 2
    assert "invalid choice: 'wrok'" in result.err


@pytest.mark.parametrize("argv", [("config", "--nope"), ("publish", "--force", "extra")])
def test_unknown_arguments_are_usage_errors(cli: Cli, argv: tuple[str, ...]) -> None:
    assert cli(*argv).code == 2


@pytest.mark.parametrize(
    ("argv", "command", "unknown"),
    [
        (("worker", "--bogus-flag"), "worker", "--bogus-flag"),
        (("worker", "tasks", "--concurrency", "2", "--bogus", "x"), "worker", "--bogus x"),
        (("dlq", "list", "--queue", "q", "--nope"), "dlq list", "--nope"),
        (("config", "--nope"), "config", "--nope"),
    ],
)
def test_an_unknown_flag_is_reported_with_its_commands_usage(
    cli: Cli, argv: tuple[str, ...], command: str, unknown: str
) -> None:
    # the top-level usage (usage: asynctasq [-h] [--version] COMMAND ...) was printed
    result = cli(*argv)
    assert (result.code, result.out) == (2, "")
    first, *_, last = result.err.splitlines()
    assert first.startswith(f"usage: asynctasq {command} [-h]")
    assert last == f"asynctasq {command}: error: unrecognized arguments: {unknown}"


def test_an_unknown_flag_before_the_command_gets_the_top_level_usage(cli: Cli) -> None:
    result = cli("--bogus", "worker")
    assert result.code == 2
    assert result.err.splitlines() == [
        "usage: asynctasq [-h] [--version] COMMAND ...",
        "asynctasq: error: unrecognized arguments: --bogus",
    ]


def test_version_prints_the_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out.startswith("asynctasq ")


def test_the_console_script_is_main() -> None:
    from importlib.metadata import entry_points

    from asynctasq.cli.main import main

    (script,) = entry_points(group="console_scripts", name="asynctasq")
    assert script.load() is main
