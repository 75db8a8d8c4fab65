"""The threads that run sync tasks: bounded, daemonic, and honest about timed-out calls.

A sync task runs in one of at most ``max_threads`` daemon threads, so the event loop stays
free (lease renewal, other tasks; FIELD-CASES C06, C16). Python cannot kill a thread, so a
call that passes its timeout is *reported* failed at once while its thread runs on; the
worker's slot then waits for :attr:`ThreadCall.finished` before taking more work. With one
call per slot, the threads never outnumber the slots, however many calls time out (C16.1).
Daemon threads never keep a stopping worker process alive.

We use our own small pool rather than ``asyncio.to_thread``/anyio's: their threads are
joined at interpreter exit (a stuck task would hang shutdown) and they release their
limiter token when the awaiting side gives up, not when the thread is really free.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any


class ThreadCall:
    """One call handed to a thread.

    Attributes:
        result: resolves with the return value or exception; the caller may cancel it
            (the thread runs on regardless).
        finished: resolves when the thread is really done with the call.
    """

    __slots__ = ("context", "error", "finished", "function", "loop", "result", "value")

    def __init__(self, loop: asyncio.AbstractEventLoop, function: Callable[[], Any]) -> None:
        self.loop = loop
        self.function = function
        self.context = contextvars.copy_context()
        self.result: asyncio.Future[Any] = loop.create_future()
        self.finished: asyncio.Future[None] = loop.create_future()
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        """Run in a worker thread, then hand the outcome back to the loop."""
        try:
            self.value = self.context.run(self.function)
        except BaseException as exc:  # every outcome goes back to the loop
            self.error = exc
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        if not self.result.done():
            if self.error is not None:
                self.result.set_exception(self.error)
            else:
                self.result.set_result(self.value)
        self.finished.set_result(None)


class ThreadRunner:
    """Runs sync callables in at most ``max_threads`` daemon threads, started on demand.

    Args:
        max_threads: the ceiling on threads (the worker passes its concurrency).
        name: prefix of the thread names.
    """

    def __init__(self, max_threads: int, *, name: str = "asynctasq-sync") -> None:
        self.max_threads = max_threads
        self._name = name
        self._work: queue.SimpleQueue[ThreadCall | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    @property
    def thread_count(self) -> int:
        """How many threads have been started."""
        return len(self._threads)

    def submit(self, function: Callable[[], Any]) -> ThreadCall:
        """Queue ``function`` (run in a copy of the caller's context) and return its call.

        Must be called from the event loop's thread.
        """
        call = ThreadCall(asyncio.get_running_loop(), function)
        with self._lock:
            if self._idle > 0:
                self._idle -= 1  # an idle thread will take it
                start = False
            else:
                start = len(self._threads) < self.max_threads  # else it waits for a thread
        if start:
            thread = threading.Thread(
                target=self._serve, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self._work.put(call)
        return call

    def _serve(self) -> None:
        while True:
            call = self._work.get()
            if call is None:
                return
            call.run()
            with self._lock:
                self._idle += 1

    def close(self) -> None:
        """Ask idle threads to exit; busy ones exit after their call (they are daemons)."""
        for _ in self._threads:
            self._work.put(None)
