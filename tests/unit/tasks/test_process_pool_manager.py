"""The process pool's parts that need no pool process: the manager's settings, the default
manager on the handle, what a pool process does with a frame (run in-process here), how
replies that cannot cross are converted, and which tasks a pool can run."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

import asynctasq
from asynctasq.config.records import ProcessPoolConfig
from asynctasq.errors import ConfigError, ProcessPoolUnavailableError, SerializationError
from asynctasq.handle import Handle, configured
from asynctasq.message import TaskMessage
from asynctasq.tasks import task
from asynctasq.tasks.dispatch import build_message
from asynctasq.tasks.infrastructure.child import ChildState, refusal_in, reply_bytes
from asynctasq.tasks.infrastructure.children import describe_exit
from asynctasq.tasks.infrastructure.frames import (
    Done,
    Failed,
    Ready,
    Run,
    Setup,
    decode_frame,
    encode_frame,
)
from asynctasq.tasks.infrastructure.guard import (
    POOL_PROCESS_VARIABLE,
    PoolProcessRefusedError,
    in_pool_process,
)
from asynctasq.tasks.infrastructure.process_pool_manager import (
    ProcessPoolManager,
    build_process_pool,
    cpu_count,
    get_default_manager,
    set_default_manager,
)
from asynctasq.tasks.registry import build_registry
from asynctasq.worker.execute import run_process
from asynctasq.worker.pool import child_spec, open_worker_pool, unpoolable_reason
from tests.unit.tasks import pool_child_tasks

MODULE = "tests.unit.tasks.pool_child_tasks"


def test_the_seed_names_are_importable_where_the_seed_says() -> None:
    assert asynctasq.ProcessPoolManager is ProcessPoolManager
    assert callable(set_default_manager)


def test_a_manager_defaults_to_the_cpu_count_and_no_recycling() -> None:
    manager = ProcessPoolManager()
    assert (manager.size, manager.max_tasks_per_child) == (cpu_count(), None)
    assert (manager.initialized, manager.pids, manager.processes_started) == (False, (), 0)


def test_a_manager_takes_the_seeds_keywords() -> None:
    manager = ProcessPoolManager(async_max_workers=4, async_max_tasks_per_child=100)
    assert (manager.size, manager.max_tasks_per_child) == (4, 100)
    assert "async_max_workers=4" in repr(manager)


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "2"])
@pytest.mark.parametrize("name", ["async_max_workers", "async_max_tasks_per_child"])
def test_a_bad_manager_setting_is_a_config_error_naming_it(name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        ProcessPoolManager(**{name: value})
    assert f"ProcessPoolManager({name}={value!r})" in str(caught.value)
    assert "must be an integer >= 1 or None" in str(caught.value)


@pytest.mark.parametrize("value", [1025, 100_000, 99999999999999999999])
def test_a_manager_of_more_than_1024_processes_is_refused_before_any_starts(value: int) -> None:
    with pytest.raises(ConfigError) as caught:
        ProcessPoolManager(async_max_workers=value)
    assert f"ProcessPoolManager(async_max_workers={value!r}): must be at most 1024" in str(
        caught.value
    )
    assert ProcessPoolManager(async_max_workers=1024).size == 1024  # the bound itself is fine


def test_the_pool_is_built_from_the_process_pool_group() -> None:
    manager = build_process_pool(ProcessPoolConfig(size=3, max_tasks_per_child=10))
    assert (manager.size, manager.max_tasks_per_child) == (3, 10)
    assert build_process_pool(ProcessPoolConfig()).size == cpu_count()


def test_set_default_manager_needs_a_current_handle() -> None:
    with pytest.raises(ConfigError, match=r"call asynctasq\.init\(\) first"):
        set_default_manager(ProcessPoolManager(1))
    assert get_default_manager() is None


def test_set_default_manager_sets_it_on_the_current_handle_only() -> None:
    manager = ProcessPoolManager(1)
    with configured(driver="memory") as outer:
        set_default_manager(manager)
        assert outer.process_pool_manager is manager
        assert get_default_manager() is manager
        with configured(driver="memory") as inner:
            assert inner.process_pool_manager is None
            assert get_default_manager() is None
        assert get_default_manager() is manager
        set_default_manager(None)
        assert get_default_manager() is None


def test_set_default_manager_refuses_other_objects() -> None:
    with configured(driver="memory"), pytest.raises(TypeError, match="ProcessPoolManager or None"):
        set_default_manager("pool")  # type: ignore[arg-type]


def test_task_definitions_carry_their_module_and_qualname() -> None:
    loop_id = pool_child_tasks.loop_id.definition
    named = pool_child_tasks.Named.definition
    assert (loop_id.module, loop_id.qualname) == (MODULE, "loop_id")
    assert (named.name, named.module, named.qualname) == ("custom-name", MODULE, "Named")


def test_tasks_defined_in_a_function_cannot_be_pooled_and_say_why() -> None:
    @task(process=True)
    def local() -> None:
        return None

    reason = unpoolable_reason(local.definition)
    assert "defined inside a function" in reason
    assert "define it at the top level of module" in reason
    assert unpoolable_reason(pool_child_tasks.loop_id.definition) == ""
    nameless = attrs.evolve(pool_child_tasks.loop_id.definition, module="")
    assert "__main__ with no importable name" in unpoolable_reason(nameless)


def test_the_child_spec_carries_the_resolved_config_without_the_engine() -> None:
    with configured(driver="memory", sqlalchemy_engine=object()) as handle:
        spec = child_spec(handle, (MODULE,))
    assert spec.config.sqlalchemy_engine is None
    assert spec.config.driver == "memory"
    assert spec.modules == (MODULE,)
    assert spec.sys_path == tuple(sys.path)
    assert decode_frame(encode_frame(spec), "spec").config == spec.config  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_worker_without_process_tasks_starts_no_pool() -> None:
    async with configured(driver="memory") as handle:
        assert await open_worker_pool(handle, build_registry([])) is None


@pytest.mark.anyio
async def test_a_process_task_on_a_worker_without_a_pool_is_unavailable() -> None:
    async with configured(driver="memory") as handle:
        message = build_message(pool_child_tasks.attempt_seen(), handle.config)
    error = await run_process(None, message)
    assert isinstance(error, ProcessPoolUnavailableError)
    assert "needs the process pool" in str(error)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (3, "exited with code 3"),
        (
            -signal.SIGKILL,
            "was killed by SIGKILL (from outside: e.g. the kernel's out-of-memory killer)",
        ),
        (-signal.SIGSEGV, "was killed by SIGSEGV (a crash in native code)"),
        (-signal.SIGTERM, "was killed by SIGTERM"),
        (None, "closed its connection and did not exit"),
    ],
)
def test_how_a_pool_process_ended_is_said_in_words(code: int | None, words: str) -> None:
    assert describe_exit(code) == words


class _LockedError(Exception):
    def __init__(self) -> None:
        super().__init__("locked")
        self.lock = threading.Lock()


def test_a_result_that_cannot_be_pickled_becomes_a_serialization_error() -> None:
    reply = decode_frame(reply_bytes(Done(threading.Lock()), "m:f"), "reply")
    assert isinstance(reply, Failed)
    assert isinstance(reply.error, SerializationError)
    assert "the result of task 'm:f' (lock object) cannot be sent back" in str(reply.error)


def test_an_exception_that_cannot_be_pickled_becomes_a_serialization_error() -> None:
    reply = decode_frame(reply_bytes(Failed(_LockedError()), "m:f"), "reply")
    assert isinstance(reply, Failed)
    assert "task 'm:f' raised _LockedError: locked in its pool process" in str(reply.error)


def test_a_plain_value_and_exception_cross_unchanged() -> None:
    assert decode_frame(reply_bytes(Done({"a": 1}), "m:f"), "reply") == Done({"a": 1})
    reply = decode_frame(reply_bytes(Failed(ValueError("bad")), "m:f"), "reply")
    assert isinstance(reply, Failed)
    assert repr(reply.error) == "ValueError('bad')"


def test_bytes_that_do_not_unpickle_are_a_serialization_error_naming_them() -> None:
    with pytest.raises(SerializationError, match="the reply of task 'x' cannot be read"):
        decode_frame(b"not a pickle", "the reply of task 'x'")


@pytest.fixture(autouse=True)
def _keep_the_asynctasq_log_level() -> Iterator[None]:
    """A pool process's setup sets the ``asynctasq`` logger's level; put it back."""
    logger = logging.getLogger("asynctasq")
    level = logger.level
    yield
    logger.setLevel(level)


class _NoConnection:
    """A pool process's logic is tested here without a socket."""


def _child(handle: Handle, *, warm: bool) -> ChildState:
    state = ChildState(_NoConnection())  # type: ignore[arg-type]
    setup = Setup(warm=warm, log_level=logging.INFO, spec=child_spec(handle, (MODULE,)))
    assert decode_frame(state.answer(setup), "ready") == Ready(pid=os.getpid())
    return state


def _run(state: ChildState, message: TaskMessage, attempt: int = 1) -> object:
    return decode_frame(state.answer(Run(message, attempt, "w-1")), "reply")


def test_a_pool_process_with_a_warm_loop_reuses_it_and_warns_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with configured(driver="memory") as handle:
        message = build_message(pool_child_tasks.loop_id(), handle.config)
    state = _child(handle, warm=True)
    try:
        assert _run(state, message) == _run(state, message) == Done(id(state.loop))
    finally:
        state.close()
    assert "on-demand" not in caplog.text


def test_a_pool_process_without_a_warm_loop_makes_one_per_task_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with configured(driver="memory") as handle:
        message = build_message(pool_child_tasks.loop_id(), handle.config)
    state = _child(handle, warm=False)
    first = _run(state, message)
    second = _run(state, message)
    state.close()
    assert isinstance(first, Done)
    assert isinstance(second, Done)
    assert state.loop is None
    warnings = [r for r in caplog.records if "on-demand event loop" in r.getMessage()]
    assert len(warnings) == 1
    assert "tests.unit.tasks.pool_child_tasks:loop_id" in warnings[0].getMessage()


def test_a_pool_process_runs_class_tasks_by_their_registered_name() -> None:
    with configured(driver="memory") as handle:
        message = build_message(pool_child_tasks.Named().pending(), handle.config)
        state = _child(handle, warm=True)
        try:
            assert _run(state, message) == Done("ran")
        finally:
            state.close()


def test_a_pool_process_reports_the_execution_it_runs() -> None:
    with configured(driver="memory") as handle:
        message = build_message(pool_child_tasks.attempt_seen(), handle.config)
    state = _child(handle, warm=False)
    assert _run(state, message, attempt=4) == Done(4)


def test_a_pool_process_finds_only_the_tasks_of_the_modules_it_was_given() -> None:
    @task(process=True)
    def elsewhere() -> None:
        return None

    with configured(driver="memory") as handle:
        message = build_message(elsewhere(), handle.config)
    reply = _run(_child(handle, warm=False), message)
    assert isinstance(reply, Failed)
    assert "unknown task" in str(reply.error)
    assert "not defined in the task modules the worker gave it" in str(reply.error)


@pytest.fixture
def as_pool_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mark this test process as a pool process, as the pool-process program does."""
    monkeypatch.setenv(POOL_PROCESS_VARIABLE, str(os.getpid()))


def test_only_the_process_that_marked_itself_is_a_pool_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not in_pool_process()
    monkeypatch.setenv(POOL_PROCESS_VARIABLE, str(os.getpid() + 1))  # a task's subprocess
    assert not in_pool_process()
    monkeypatch.setenv(POOL_PROCESS_VARIABLE, str(os.getpid()))
    assert in_pool_process()


@pytest.mark.anyio
@pytest.mark.usefixtures("as_pool_process")
async def test_a_pool_process_refuses_to_run_a_worker_naming_the_missing_main_guard() -> None:
    async with configured(driver="memory") as handle:
        with pytest.raises(ProcessPoolUnavailableError) as caught:
            await asynctasq.run_worker(handle, tasks=[pool_child_tasks], max_tasks=1)
    text = str(caught.value)
    assert text.startswith(f"run_worker() was called in a pool process (pid {os.getpid()})")
    assert 'Put that call under `if __name__ == "__main__":`' in text


@pytest.mark.anyio
@pytest.mark.usefixtures("as_pool_process")
async def test_a_pool_process_starts_no_pool_processes_of_its_own() -> None:
    manager = ProcessPoolManager(1)
    with pytest.raises(PoolProcessRefusedError) as caught:
        await manager.initialize()
    assert "a process pool was asked to start a process in a pool process" in str(caught.value)
    assert (manager.processes_started, manager.pids) == (0, ())


def test_a_refusal_is_found_behind_what_the_import_raised_instead() -> None:
    refusal = PoolProcessRefusedError("no")
    outer = RuntimeError("asyncio.run() failed")
    outer.__context__ = refusal  # what `raise ... from None` inside an except keeps
    outer.__suppress_context__ = True
    assert refusal_in(outer) is refusal
    assert refusal_in(ValueError("other")) is None
