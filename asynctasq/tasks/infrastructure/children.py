"""One pool process seen from the worker: start it, talk to it, wait for it, kill it.

How a pool process is started, and why not with :mod:`multiprocessing`: the worker runs
``python -c "from asynctasq.tasks.infrastructure.child import main; main()" FD`` with
:class:`subprocess.Popen`, FD being one end of a :func:`socket.socketpair` passed with
``pass_fds`` (POSIX). That is a fresh interpreter, like the ``spawn`` start method —
never ``fork``, which would copy a worker that has threads (lease renewal, sync tasks)
and a running event loop with open broker sockets. Unlike ``spawn`` and ``forkserver``
it does not run the worker's ``__main__`` script again in every child, so a script
without an ``if __name__ == "__main__":`` guard (such as the seed's example) works —
unless the script defines process-pool tasks: then pool processes import it, and
:mod:`~asynctasq.tasks.infrastructure.guard` stops what it starts at import. And
owning each process, rather than handing work to ``ProcessPoolExecutor``, is what lets
the worker kill exactly the process of a task past its timeout, and tell which task a
dead process was running (FIELD-CASES C39) — an executor can do neither, and one dead
child breaks it for good.

Frames are read without blocking the event loop: the worker waits for the socket to
become readable (``loop.add_reader``), then reads one frame. Nothing here is tied to one
event loop, so a pool made under one ``asyncio.run()`` can serve a worker run under
another. A pool process's stdout and stderr are the worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection

from asynctasq.errors import PoolProcessRefusedError, ProcessPoolUnavailableError
from asynctasq.tasks.infrastructure.child import COMMAND
from asynctasq.tasks.infrastructure.frames import (
    ChildSpec,
    Configure,
    Ready,
    Setup,
    Stop,
    decode_frame,
    encode_frame,
)

START_TIMEOUT_SECONDS = 60.0
"""How long a new pool process may take to start and import the task modules."""

EXIT_WAIT_SECONDS = 5.0
"""How long to wait for a pool process to exit after its socket closed or it was killed."""


class ProcessGone(Exception):  # noqa: N818 -- an internal signal, not an error users see
    """The pool process closed its socket: it died (or exited) before answering."""


def describe_exit(code: int | None) -> str:
    """Return how a pool process ended, in words, from its return code."""
    if code is None:
        return "closed its connection and did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ""
        if -code == signal.SIGKILL:
            hint = " (from outside: e.g. the kernel's out-of-memory killer)"
        elif -code in (signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT):
            hint = " (a crash in native code)"
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


class PoolProcess:
    """One running pool process.

    Attributes:
        popen: its :class:`subprocess.Popen`.
        connection: the worker's end of their socket pair.
        pid: its process id.
        tasks_done: executions it answered (for ``max_tasks_per_child``).
        spec: the spec it loaded last, or ``None``.
    """

    def __init__(self, popen: subprocess.Popen[bytes], connection: Connection) -> None:
        self.popen = popen
        self.connection = connection
        self.pid = popen.pid
        self.tasks_done = 0
        self.spec: ChildSpec | None = None

    def __repr__(self) -> str:
        return f"<PoolProcess pid={self.pid} tasks_done={self.tasks_done}>"

    @classmethod
    async def start(cls, *, warm: bool, log_level: int, spec: ChildSpec | None) -> PoolProcess:
        """Start a pool process and wait until it has loaded ``spec``.

        Args:
            warm: give it one event loop for its whole life.
            log_level: the worker's ``asynctasq`` log level.
            spec: the task modules and configuration to load, or ``None``.

        Raises:
            ProcessPoolUnavailableError: it could not start, or could not load the task
                modules (the reason is in the message); it is not left running.
        """
        ours, theirs = socket.socketpair()
        try:
            popen = launch(theirs.fileno())
        except OSError as exc:
            ours.close()
            raise ProcessPoolUnavailableError(f"cannot start a pool process: {exc}") from exc
        finally:
            theirs.close()
        process = cls(popen, Connection(ours.detach()))
        try:
            await process.load(Setup(warm=warm, log_level=log_level, spec=spec), spec)
        except BaseException:
            await process.kill()
            raise
        return process

    async def load(self, frame: Setup | Configure, spec: ChildSpec | None) -> None:
        """Send ``frame`` and wait for its :class:`Ready`.

        Raises:
            ProcessPoolUnavailableError: the process died or could not load ``spec``.
            PoolProcessRefusedError: importing ``spec``'s modules started a worker or a
                pool there (an unguarded script): no process ever will load them.
        """
        what = "start" if isinstance(frame, Setup) else "reconfiguration"
        try:
            self.send(encode_frame(frame))
            reply = await self.receive(START_TIMEOUT_SECONDS, f"the {what} reply of a pool process")
        except ProcessGone:
            code = await self.wait_exit()
            raise ProcessPoolUnavailableError(
                f"pool process {self.pid} {describe_exit(code)} during its {what}"
            ) from None
        except TimeoutError:
            raise ProcessPoolUnavailableError(
                f"pool process {self.pid} did not finish its {what} within "
                f"{START_TIMEOUT_SECONDS:g} s"
            ) from None
        if isinstance(reply, Ready) and reply.fatal:
            raise PoolProcessRefusedError(f"pool process {self.pid} refused: {reply.error}")
        if not isinstance(reply, Ready) or reply.error:
            reason = reply.error if isinstance(reply, Ready) else repr(reply)
            raise ProcessPoolUnavailableError(f"pool process {self.pid}: {reason}")
        self.spec = spec

    def send(self, data: bytes) -> None:
        """Send one encoded frame.

        Raises:
            ProcessGone: the process has closed its end.
        """
        try:
            self.connection.send_bytes(data)
        except OSError:
            raise ProcessGone from None

    async def receive(self, timeout_seconds: float | None, where: str) -> object:
        """Wait (without blocking the loop) for one frame, then read and decode it.

        Args:
            timeout_seconds: the longest wait, or ``None``.
            where: what is being read, for a decoding error.

        Raises:
            TimeoutError: nothing arrived in time.
            ProcessGone: the process closed its socket (it died).
            SerializationError: the frame cannot be unpickled here.
        """
        loop = asyncio.get_running_loop()
        descriptor = self.connection.fileno()
        readable: asyncio.Future[None] = loop.create_future()
        loop.add_reader(descriptor, _resolve, readable)
        try:
            async with asyncio.timeout(timeout_seconds):
                await readable
        finally:
            loop.remove_reader(descriptor)
        try:
            data = self.connection.recv_bytes()
        except (EOFError, OSError):
            raise ProcessGone from None
        return decode_frame(data, where)

    def alive(self) -> bool:
        """Return whether the process is still running."""
        return self.popen.poll() is None

    async def wait_exit(self, seconds: float = EXIT_WAIT_SECONDS) -> int | None:
        """Wait up to ``seconds`` for the process to exit; return its code or ``None``."""
        deadline = time.monotonic() + seconds
        delay = 0.001
        while self.popen.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return self.popen.returncode

    async def kill(self) -> int | None:
        """SIGKILL the process, close the socket, and reap it; return its exit code."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.connection.close()
        return await self.wait_exit()

    async def stop(self, grace_seconds: float) -> None:
        """Ask the process to end (it closes its connections first); kill it after the grace."""
        with contextlib.suppress(ProcessGone):
            self.send(encode_frame(Stop()))
        if await self.wait_exit(grace_seconds) is None:
            await self.kill()
        self.connection.close()

    def close_now(self, grace_seconds: float = 2.0) -> None:
        """Stop the process without an event loop (garbage collection, interpreter exit)."""
        with contextlib.suppress(OSError):
            self.connection.close()  # the idle process reads end-of-file and exits
        try:
            self.popen.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            self.popen.wait()


def launch(descriptor: int) -> subprocess.Popen[bytes]:
    """Start the pool-process program with ``descriptor`` (its socket) passed to it.

    A fork and exec (``posix_spawn`` where possible): it returns in milliseconds, without
    waiting for the new interpreter to start.
    """
    return subprocess.Popen(  # noqa: S603 -- our own interpreter and program
        [sys.executable, "-c", COMMAND, str(descriptor)],
        pass_fds=(descriptor,),
        stdin=subprocess.DEVNULL,
    )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
