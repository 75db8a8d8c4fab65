"""A script without ``if __name__ == "__main__":`` that defines a process task and runs a worker.

Never import it from a test: importing it runs the worker. Tests run it
(``python -m tests.integration.process_pool.unguarded_tasks``) or name it in a pool's
:class:`~asynctasq.tasks.infrastructure.frames.ChildSpec`; its pool processes import it,
and so reach the ``asyncio.run(main())`` below, which they must refuse.
"""

from __future__ import annotations

import asyncio

from asynctasq import configured, run_worker, task


@task(process=True)
def double(number: int) -> int:
    return 2 * number


async def main() -> None:
    async with configured(driver="memory", process_pool={"size": 1}) as handle:
        await run_worker(handle, tasks=[double], max_tasks=1, handle_signals=False)


asyncio.run(main())  # unguarded on purpose: what this module is for
