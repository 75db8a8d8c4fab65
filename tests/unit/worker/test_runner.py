from __future__ import annotations

import asyncio

from asynctasq.runner import has_uvloop, run


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_run_uses_uvloop_when_installed() -> None:
    expected = "uvloop" if has_uvloop() else "asyncio.unix_events"
    assert run(loop_module()) == expected


def test_run_can_be_told_to_use_the_asyncio_loop() -> None:
    assert run(loop_module(), use_uvloop=False).startswith("asyncio")
