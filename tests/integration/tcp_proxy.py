"""A loopback TCP proxy in its own process, to simulate a broker outage for one client.

The shared brokers are never stopped (other tests use them). A client pointed at the proxy
instead sees what an outage looks like from its side:

* :meth:`Proxy.blackhole` (``SIGSTOP``): the proxy stops reading and forwarding; the kernel
  still completes new TCP handshakes (listen backlog), so a connect "succeeds" and then
  nothing ever answers — a host that vanished, a partition;
* :meth:`Proxy.refuse` (``SIGKILL``): every connection is reset and new ones are refused —
  a stopped broker;
* :meth:`Proxy.resume` / :meth:`Proxy.restart`: the broker is back (same port).

Run as ``python -m tests.integration.tcp_proxy UPSTREAM_HOST UPSTREAM_PORT [PORT]``: it
prints the port it listens on (127.0.0.1), then forwards until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _serve(upstream_host: str, upstream_port: int, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


class Proxy:
    """One proxy process in front of ``upstream_url``'s host and port.

    Args:
        upstream_url: the real server's URL (any scheme with host and port).

    Attributes:
        port: the loopback port the proxy listens on (kept across :meth:`restart`).

    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = upstream_url
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 0)
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``upstream_url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(self._upstream_url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self) -> Proxy:
        """Start forwarding (on :attr:`port`, or a free port the first time)."""
        host, upstream_port = self._upstream
        command = [sys.executable, "-m", "tests.integration.tcp_proxy", host, str(upstream_port)]
        process = subprocess.Popen(
            [*command, str(self.port)], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            process.kill()
            process.wait()
            process.stdout.close()
            raise RuntimeError(f"the TCP proxy did not start (it printed {line!r})")
        self.port = int(line)
        self._process = process
        return self

    @property
    def pid(self) -> int:
        """The proxy process id. Raises RuntimeError when it is not running."""
        if self._process is None:
            raise RuntimeError("the proxy is not running")
        return self._process.pid

    def blackhole(self) -> None:
        """Stop the proxy (``SIGSTOP``): nothing is forwarded, nothing is refused."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a blackholed proxy (``SIGCONT``)."""
        os.kill(self.pid, signal.SIGCONT)

    def refuse(self) -> None:
        """Kill the proxy: its connections are reset and new ones refused."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def restart(self) -> None:
        """Start forwarding again on the same port after :meth:`refuse`."""
        self.refuse()
        self.start()

    def stop(self) -> None:
        """Kill the proxy for good (continuing it first if it was stopped)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGCONT)
        self.refuse()


if __name__ == "__main__":
    upstream_host, upstream_port = sys.argv[1], int(sys.argv[2])
    listen_port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(upstream_host, upstream_port, listen_port))
