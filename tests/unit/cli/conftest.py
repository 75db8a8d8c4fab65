"""Fixtures for CLI tests: text snapshots in the top-level ``snapshots/``, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs
import pytest
from snapshot import TextSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from asynctasq.cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Syrupy's ``snapshot``, stored as text under ``snapshots/unit/cli/<test file>/``."""
    return snapshot.use_extension(TextSnapshotExtension)


@attrs.frozen
class Result:
    """What a CLI run printed and returned."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """Run ``asynctasq`` in-process: ``cli("config", "--diff")`` -> :class:`Result`.

    ``COLUMNS`` is fixed at 100 so argparse wraps ``--help`` the same on every terminal.
    """
    monkeypatch.setenv("COLUMNS", "100")

    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_module(*argv: str, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Result:
    """Run ``python -m asynctasq *argv`` in a subprocess (10 s timeout) and return its result.

    The child gets the parent's environment without ``ASYNCTASQ_*`` variables, plus ``env``.
    """
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCTASQ_")}
    child_env.update(env or {})
    child_env["PYTHONPATH"] = str(REPO_ROOT)
    child_env["COLUMNS"] = "100"
    done = subprocess.run(
        [sys.executable, "-m", "asynctasq", *argv],
        capture_output=True,
        text=True,
        timeout=10,
        env=child_env,
        cwd=cwd,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)
