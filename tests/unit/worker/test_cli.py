"""``asynctasq worker`` refuses bad input before connecting (FIELD-CASES C37)."""

from __future__ import annotations

import pytest

from asynctasq.cli.main import main

UNREACHABLE = ("--redis-url", "redis://127.0.0.1:1")  # a connection attempt would exit 1
TASKS = ("--import", "asynctasq.demo.tasks")  # a module that defines tasks


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["worker", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--concurrency", "-1"], "--concurrency"),
        (["--concurrency", "abc"], "--concurrency"),
        (["--concurrency", "1.5"], "--concurrency"),
        (["--concurrency", "10001"], "--concurrency"),
        (["--queues", ""], "--queues"),
        (["--queues", ","], "--queues"),
        (["--queues", "a,,b"], "--queues"),
        (["--max-tasks", "0"], "--max-tasks"),
        (["--shutdown-timeout", "-1"], "--shutdown-timeout"),
        (["--shutdown-timeout", "nan"], "--shutdown-timeout"),
        (["--driver", "redsi"], "--driver"),
        (["--redis-db", "99"], "--redis-db"),
        (["--redis-db", "-1"], "--redis-db"),
        (["--import", "no_such_module_for_asynctasq_tests"], "no_such_module_for_asynctasq_tests"),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    code, err = run(capsys, *argv, *UNREACHABLE)
    assert code == 2
    assert named in err
    assert "Traceback" not in err
    assert err.startswith("asynctasq worker: error: ")
    assert err.count("error:") == 1, err  # one message (a config error lists each problem)


def test_a_concurrency_too_large_to_start_is_refused_with_the_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 10000000 was accepted: the worker grew to 5.8 GB making its slots and did not
    # answer SIGTERM
    code, err = run(capsys, "--concurrency", "10000000", *TASKS, *UNREACHABLE)
    assert (code, err) == (
        2,
        "asynctasq worker: error: --concurrency must be at most 10000, got '10000000' (each "
        "slot is a coroutine made at start: 10000000 took 5.8 GB and ignored SIGTERM; for "
        "more throughput, run more worker processes)\n",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ASYNCTASQ_REDIS_DB", "99"), ("ASYNCTASQ_DRIVER", "redsi"), ("ASYNCTASQ_REDIS_DB", "x")],
)
def test_a_bad_environment_variable_is_named_with_exit_code_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    code, err = run(capsys, *UNREACHABLE)
    assert code == 2
    assert variable in err
    assert "Traceback" not in err


def test_an_unreachable_broker_is_a_runtime_error_with_exit_code_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run(capsys, "--max-tasks", "1", *TASKS, *UNREACHABLE)
    assert code == 1
    assert "redis" in err
    assert "Traceback" not in err


def test_a_worker_without_task_modules_does_not_start(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, *UNREACHABLE)
    assert code == 2
    assert "no task modules given" in err
    assert "--import myapp.tasks" in err
    assert "Traceback" not in err


def test_modules_without_tasks_are_named_and_the_worker_does_not_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run(capsys, "json", "--import", "string", *UNREACHABLE)
    assert code == 2
    assert "no tasks found in json, string" in err
    assert "Traceback" not in err


def test_worker_help_lists_its_options_and_the_config_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["worker", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--queues", "--concurrency", "--max-tasks", "--shutdown-timeout", "--import"):
        assert flag in out
    for flag in ("--driver", "--redis-url", "--task-defaults-max-attempts", "--process-pool-size"):
        assert flag in out
