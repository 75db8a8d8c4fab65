"""``asynctasq publish``: writes .env.example, never overwrites it without --force."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import Result
from syrupy.assertion import SnapshotAssertion

from asynctasq.config.schema import env_example_text

Cli = Callable[..., Result]


def test_env_example_text(snapshot: SnapshotAssertion) -> None:
    assert env_example_text() == snapshot


def test_publish_writes_env_example_in_the_current_directory(cli: Cli) -> None:
    result = cli("publish")
    assert (result.code, result.err) == (0, "")
    assert Path(".env.example").read_bytes() == env_example_text().encode("utf-8")
    assert result.out.startswith("Wrote .env.example (")


def test_publish_writes_into_the_output_dir(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    result = cli("publish", "--output-dir", "deploy")
    assert result.code == 0
    assert (tmp_path / "deploy" / ".env.example").read_text(encoding="utf-8") == env_example_text()


def test_publish_refuses_to_overwrite_without_force(cli: Cli) -> None:
    Path(".env.example").write_text("mine\n", encoding="utf-8")
    result = cli("publish")
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "asynctasq publish: error: .env.example already exists; pass --force to overwrite it\n"
    )
    assert Path(".env.example").read_text(encoding="utf-8") == "mine\n"


def test_publish_force_overwrites(cli: Cli) -> None:
    Path(".env.example").write_text("mine\n", encoding="utf-8")
    assert cli("publish", "--force").code == 0
    assert Path(".env.example").read_text(encoding="utf-8") == env_example_text()


def test_publish_into_a_missing_directory_is_a_usage_error(cli: Cli) -> None:
    result = cli("publish", "--output-dir", "missing")
    assert result.code == 2
    assert result.err == "asynctasq publish: error: --output-dir missing: no such directory\n"


def test_a_file_that_cannot_be_written_is_a_runtime_failure(cli: Cli) -> None:
    Path(".env.example").mkdir()
    result = cli("publish", "--force")
    assert result.code == 1
    assert result.err.startswith("asynctasq publish: error: cannot write .env.example: ")
    assert "Traceback" not in result.err
