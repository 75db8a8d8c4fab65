"""Process-pool tasks the unit tests run in-process through a pool process's logic."""

from __future__ import annotations

import asyncio

from asynctasq.tasks import AsyncProcessTask, current_task, task


@task(process=True)
async def loop_id() -> int:
    """Return the id of the running event loop."""
    return id(asyncio.get_running_loop())


@task(process=True)
def attempt_seen() -> int | None:
    """Return the attempt ``current_task()`` reports."""
    info = current_task()
    return info.attempt if info else None


class Named(AsyncProcessTask, name="custom-name"):
    """A class task under a custom name."""

    async def execute(self) -> str:
        return "ran"
