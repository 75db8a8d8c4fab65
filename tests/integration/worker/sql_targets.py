"""The SQL drivers as worker-test targets: fresh migrated tables per test, dropped after."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from asynctasq.config.resolve import resolve
from asynctasq.drivers import build_driver
from tests.integration.sql_servers import drop, environment, group_settings, migrate, require_server

T = TypeVar("T")

SQLParts = tuple[
    dict[str, str],
    dict[str, Any],
    Callable[[str], Coroutine[Any, Any, dict[str, int]]],
    Callable[[str], None],
]


def in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to the end on a new event loop in another thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def sql_parts(driver: str, request: pytest.FixtureRequest) -> SQLParts:
    """Return a target's variables, settings, sizes and cleanup for ``driver``.

    Migrates fresh tables now and drops them when the test ends (after its workers).
    """
    require_server(driver)
    directory: Path = request.getfixturevalue("tmp_path")
    settings = group_settings(driver, directory)
    config = resolve({"driver": driver, driver: settings}, environ={}).config
    in_own_loop(migrate(config, driver))
    request.addfinalizer(lambda: in_own_loop(drop(driver, settings)))

    async def sizes(queue: str) -> dict[str, int]:
        inspector = build_driver(config)
        await inspector.open()
        try:
            found = await inspector.sizes(queue)
        finally:
            await inspector.close()
        return {
            "ready": found.ready,
            "in_flight": found.in_flight,
            "delayed": found.delayed,
            "dead": found.dead,
        }

    def cleanup(queue: str) -> None:
        del queue  # the whole tables go when the test ends

    return environment(driver, settings), settings, sizes, cleanup
