"""The handle: init(), current_handle(), lazily built drivers, aclose(), configured()."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import asynctasq.drivers
from asynctasq import context
from asynctasq import handle as handle_module
from asynctasq.config.records import Config, PostgresConfig, RedisConfig
from asynctasq.errors import ConfigError
from asynctasq.handle import Handle, configured, current_handle, init


@pytest.fixture(autouse=True)
def _no_current_handle() -> Iterator[None]:
    token = context.make_current(None)
    yield
    context.restore(token)


class FakeDriver:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.fail_close = False

    async def open(self) -> None:
        await asyncio.sleep(0)  # a checkpoint, so concurrent first calls interleave
        self.log.append(f"open {self.name}")

    async def close(self) -> None:
        self.log.append(f"close {self.name}")
        if self.fail_close:
            raise RuntimeError(f"close {self.name} failed")


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace build_driver with one that records builds, opens and closes."""
    entries: list[str] = []

    def build(config: Config, name: str | None = None, **_: Any) -> FakeDriver:
        chosen = name or config.driver
        entries.append(f"build {chosen}")
        return FakeDriver(chosen, entries)

    monkeypatch.setattr(asynctasq.drivers, "build_driver", build)
    return entries


def test_current_handle_without_init_says_to_call_init() -> None:
    with pytest.raises(ConfigError, match=r"call asynctasq\.init\(\) first"):
        current_handle()


class Emitter:
    def emit(self, event: object) -> None:
        pass


def test_init_resolves_and_makes_the_handle_current() -> None:
    emitter = Emitter()
    handle = init({"driver": "memory"}, event_emitters=[emitter])
    assert current_handle() is handle
    assert handle.config.driver == "memory"
    assert handle.provenance["driver"] == "code"
    assert handle.event_emitters == (emitter,)
    assert handle.tortoise_config is None
    assert Config.get() is handle.config


def test_config_get_without_a_handle_resolves_defaults_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCTASQ_REDIS_DB", "4")
    assert Config.get().redis.db == 4


def test_init_tortoise_config_becomes_the_tortoise_orm_setting() -> None:
    tortoise = {"db_url": "sqlite://:memory:", "modules": {"models": ["app.models"]}}
    handle = init(tortoise_config=tortoise)
    assert handle.tortoise_config == tortoise
    assert handle.config.tortoise_orm == tortoise
    assert handle.provenance["tortoise_orm"] == "code"


def test_init_reads_the_given_env_file() -> None:
    Path("custom.env").write_text("ASYNCTASQ_DRIVER=memory\n")
    handle = init(env_file="custom.env")
    assert handle.config.driver == "memory"
    assert handle.provenance["driver"] == "custom.env line 1"


def test_init_with_an_invalid_config_raises_and_leaves_no_handle() -> None:
    with pytest.raises(ConfigError):
        init({"redis": {"db": 99}})
    assert context.current() is None


def test_handle_repr_shows_no_secrets() -> None:
    handle = init({"redis": RedisConfig(password="hunter2")})
    assert "hunter2" not in repr(handle)


@pytest.mark.anyio
async def test_driver_is_built_opened_and_cached_once_per_name(log: list[str]) -> None:
    handle = Handle(Config(driver="redis"))
    first, second = await asyncio.gather(handle.driver(), handle.driver())
    assert first is second
    assert await handle.driver("redis") is first
    other = await handle.driver("memory")
    assert other is not first
    assert log == ["build redis", "open redis", "build memory", "open memory"]


@pytest.mark.anyio
async def test_aclose_closes_every_built_driver_newest_first(log: list[str]) -> None:
    handle = Handle(Config())
    await handle.driver("redis")
    await handle.driver("memory")
    await handle.aclose()
    assert log[-2:] == ["close memory", "close redis"]
    assert not handle.has_services()


@pytest.mark.anyio
async def test_aclose_closes_all_then_raises_the_failure(log: list[str]) -> None:
    handle = Handle(Config())
    failing: Any = await handle.driver("redis")
    failing.fail_close = True
    await handle.driver("memory")
    with pytest.raises(RuntimeError, match="close redis failed"):
        await handle.aclose()
    assert log[-2:] == ["close memory", "close redis"]


@pytest.mark.anyio
async def test_async_with_handle_closes_on_exit(log: list[str]) -> None:
    async with Handle(Config()) as handle:
        await handle.driver()
    assert log == ["build redis", "open redis", "close redis"]


@pytest.mark.anyio
async def test_driver_after_aclose_builds_anew(log: list[str]) -> None:
    handle = Handle(Config())
    first = await handle.driver()
    await handle.aclose()
    assert await handle.driver() is not first


@pytest.mark.anyio
async def test_the_memory_driver_is_built_through_build_driver() -> None:
    async with Handle(Config(driver="memory")) as handle:
        driver = await handle.driver()
        assert await handle.driver("memory") is driver


def test_configured_sync_nests_and_restores() -> None:
    outer = init({"driver": "memory"})
    with configured({"task_defaults": {"queue": "a"}}) as first:
        assert current_handle() is first
        with configured(task_defaults={"queue": "b"}) as second:
            assert current_handle() is second
            assert second.config.task_defaults.queue == "b"
        assert current_handle() is first
    assert current_handle() is outer


def test_configured_restores_on_error() -> None:
    outer = init()
    with pytest.raises(KeyError), configured(driver="memory"):
        raise KeyError("boom")
    assert current_handle() is outer


def test_configured_keyword_form() -> None:
    with configured(driver="memory", task_defaults={"max_attempts": 1}) as handle:
        assert handle.config.driver == "memory"
        assert handle.config.task_defaults.max_attempts == 1
        assert handle.provenance["task_defaults.max_attempts"] == "code"


def test_keywords_apply_over_the_positional_overrides() -> None:
    with configured({"driver": "mysql", "redis": {"db": 2}}, driver="memory") as handle:
        assert (handle.config.driver, handle.config.redis.db) == ("memory", 2)


def test_configured_inherits_the_current_handles_code_overrides_and_emitters() -> None:
    emitter = Emitter()
    init({"driver": "memory", "redis": {"db": 3}}, event_emitters=[emitter])
    with configured(task_defaults={"queue": "q"}) as handle:
        assert handle.config.driver == "memory"
        assert handle.config.redis.db == 3
        assert handle.event_emitters == (emitter,)


def test_configured_still_applies_environment_and_dotenv_below_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Path(".env").write_text("ASYNCTASQ_TASK_DEFAULTS_QUEUE=from-dotenv\n")
    monkeypatch.setenv("ASYNCTASQ_REDIS_DB", "6")
    with configured(driver="memory") as handle:
        assert handle.config.redis.db == 6
        assert handle.config.task_defaults.queue == "from-dotenv"
        with configured(redis={"db": 1}) as inner:
            assert inner.config.redis.db == 1


def test_configured_without_a_current_handle_restores_none() -> None:
    with configured(driver="memory"):
        assert current_handle().config.driver == "memory"
    assert context.current() is None


def test_configured_with_a_bad_setting_raises_on_entry_and_keeps_the_handle() -> None:
    outer = init()
    block = configured(redis={"dbb": 1})
    with pytest.raises(ConfigError, match=r"did you mean 'redis\.db'"), block:
        pass
    assert current_handle() is outer


def test_a_configured_block_cannot_be_entered_twice_at_once() -> None:
    block = configured(driver="memory")
    with block, pytest.raises(RuntimeError, match="already active"), block:
        pass


@pytest.mark.anyio
async def test_configured_async_closes_its_services(log: list[str]) -> None:
    async with configured(driver="redis") as handle:
        await handle.driver()
        assert current_handle() is handle
    assert log == ["build redis", "open redis", "close redis"]
    assert context.current() is None


@pytest.mark.anyio
async def test_configured_async_restores_on_error(log: list[str]) -> None:
    async def fail_inside() -> None:
        async with configured(driver="redis") as handle:
            await handle.driver()
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await fail_inside()
    assert context.current() is None
    assert log[-1] == "close redis"


@pytest.mark.anyio
async def test_sync_configured_inside_a_loop_schedules_the_close(log: list[str]) -> None:
    with configured(driver="redis") as handle:
        await handle.driver()
    await asyncio.gather(*handle_module._CLOSING)
    assert log[-1] == "close redis"


def test_sync_configured_around_asyncio_run_drops_closed_loop_services(
    log: list[str],
) -> None:
    with configured(driver="redis") as handle:

        async def use() -> None:
            await handle.driver()

        asyncio.run(use())
        assert not handle.has_services()  # its loop is closed; nothing left to close
    assert log == ["build redis", "open redis", "close redis"]  # closed as asyncio.run ended


def test_drivers_left_open_are_closed_when_asyncio_run_ends_and_a_failure_is_logged(
    log: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    handle = init({"driver": "redis"}, env_file=None)

    async def use() -> None:
        driver = await handle.driver()
        driver.fail_close = True  # type: ignore[attr-defined]

    asyncio.run(use())  # no aclose(): the loop's end closes what it left open
    asyncio.run(use())  # a second loop builds and closes its own
    assert log == ["build redis", "open redis", "close redis"] * 2
    assert "closing the redis driver at the end of the event loop failed" in caplog.text


@pytest.mark.anyio
async def test_concurrent_tasks_each_see_their_own_configured_handle() -> None:
    both_inside = asyncio.Barrier(2)

    async def worker(queue: str) -> tuple[str, str]:
        async with configured(task_defaults={"queue": queue}):
            await both_inside.wait()  # both blocks are active at the same time here
            seen = current_handle().config.task_defaults.queue
        await both_inside.wait()
        after = context.current()
        return seen, "none" if after is None else "leaked"

    results = await asyncio.gather(worker("a"), worker("b"))
    assert list(results) == [("a", "none"), ("b", "none")]


@pytest.mark.anyio
async def test_to_thread_sees_the_configured_handle() -> None:
    async with configured(driver="memory") as handle:
        assert await asyncio.to_thread(current_handle) is handle


@pytest.mark.anyio
async def test_tasks_created_inside_the_block_inherit_it() -> None:
    async with configured(driver="memory") as handle:
        assert await asyncio.create_task(asyncio.to_thread(current_handle)) is handle


def test_a_plain_thread_does_not_see_the_handle() -> None:
    seen: list[object] = []
    with configured(driver="memory"):
        thread = threading.Thread(target=lambda: seen.append(context.current()))
        thread.start()
        thread.join()
    assert seen == [None]


def test_the_seed_example_selecting_postgres_initialises() -> None:
    handle = init({"driver": "postgres"})  # seed/configuration.md, "Driver Selection"
    assert handle.config.driver == "postgres"


@pytest.fixture
def postgres_available(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend a postgres driver exists (the memory driver stands in for it)."""
    monkeypatch.setitem(asynctasq.drivers.BUILDERS, "postgres", "asynctasq.drivers.memory:build")


@pytest.mark.anyio
@pytest.mark.usefixtures("postgres_available")
async def test_a_missing_required_setting_fails_when_the_driver_is_built() -> None:
    handle = init({"driver": "postgres", "postgres": {"dsn": None}})
    with pytest.raises(ConfigError) as caught:
        await handle.driver()
    assert str(caught.value) == (
        "invalid asynctasq configuration (1 problem):\n"
        "  - postgres.dsn = <missing> (from code): is required when driver is 'postgres' "
        "(set ASYNCTASQ_POSTGRES_DSN or pass it in code)"
    )


@pytest.mark.usefixtures("postgres_available")
def test_build_driver_checks_required_settings_with_or_without_provenance() -> None:
    with pytest.raises(ConfigError, match=r"postgres\.dsn = <missing> \(from default\)"):
        asynctasq.drivers.build_driver(Config(driver="postgres"))
    with pytest.raises(ConfigError, match=r"\(from \.env line 2\)"):
        asynctasq.drivers.build_driver(
            Config(), "postgres", provenance={"postgres.dsn": ".env line 2"}
        )
    ready = Config(driver="postgres", postgres=PostgresConfig(dsn="postgresql://h/db"))
    assert asynctasq.drivers.build_driver(ready).name == "memory"


class AsyncEmitter:
    async def emit(self, event: object) -> None:
        pass


def test_emitters_with_a_plain_or_coroutine_emit_are_accepted() -> None:
    plain, coroutine = Emitter(), AsyncEmitter()
    assert init(event_emitters=[plain, coroutine]).event_emitters == (plain, coroutine)


@pytest.mark.parametrize(
    ("emitters", "message"),
    [
        ([object()], r"event_emitters\[0\] \(object object\) is not an event emitter"),
        ([Emitter(), "log"], r"event_emitters\[1\] \(str object\) is not an event emitter"),
        ([type("NoCall", (), {"emit": 5})()], r"event_emitters\[0\] \(NoCall object\)"),
        (Emitter(), r"event_emitters must be a list of emitters, got one Emitter"),
        ([AsyncEmitter], r"event_emitters\[0\] is the class AsyncEmitter.*AsyncEmitter\(\)"),
        ("log", r"event_emitters must be a list of emitters, got a str"),
        (print, r"got one builtin_function_or_method; pass \[print\]"),
    ],
)
def test_an_object_without_emit_is_refused_naming_it(emitters: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        init(event_emitters=emitters)
    assert context.current() is None


def test_a_plain_or_async_function_is_an_emitter() -> None:
    def plain(event: object) -> None: ...

    async def coroutine(event: object) -> None: ...

    assert init(event_emitters=[plain, coroutine]).event_emitters == (plain, coroutine)


class Closable:
    def __init__(self) -> None:
        self.events: list[object] = []
        self.closed = 0

    async def emit(self, event: object) -> None:
        self.events.append(event)

    def close(self) -> None:
        self.closed += 1


@pytest.mark.anyio
async def test_the_handle_closes_the_emitters_given_to_it_not_those_a_block_inherits() -> None:
    from asynctasq.events.records import EventType, TaskEvent, utc

    mine, blocks = Closable(), Closable()
    event = TaskEvent(EventType.TASK_STARTED, "t", "m:f", "q", utc(0))
    async with init({"driver": "memory"}, event_emitters=[mine], env_file=None) as handle:
        async with configured(task_defaults={"queue": "b"}) as inherits:
            inherits.event_bus().publish(event)
        assert mine.closed == 0  # the block only inherited it
        async with configured(event_emitters=[blocks]) as own:
            assert own.event_emitters == (blocks,)  # replaces the enclosing handle's
            own.event_bus().publish(event)
        assert (blocks.events, blocks.closed) == ([event], 1)
        handle.event_bus().publish(event)
    assert (mine.events, mine.closed) == ([event, event], 1)


def test_configured_blocks_exited_out_of_order_raise_and_change_nothing() -> None:
    outer = init()
    first, second = configured(driver="memory"), configured(task_defaults={"queue": "b"})
    a = first.__enter__()
    b = second.__enter__()
    with pytest.raises(RuntimeError, match=r"exited out of order.*exit the innermost block first"):
        first.__exit__(None, None, None)
    assert current_handle() is b
    second.__exit__(None, None, None)
    assert current_handle() is a
    first.__exit__(None, None, None)
    assert current_handle() is outer


def test_an_init_inside_a_block_is_replaced_when_the_block_ends() -> None:
    outer = init()
    with configured(driver="memory"):
        init({"driver": "redis"})
    assert current_handle() is outer
