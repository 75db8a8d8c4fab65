"""The local RabbitMQ for tests: its URL, ``rabbitmqctl`` inspection, and topology cleanup.

The management plugin is not enabled (SPEC §5: no plugins), so the broker's own view —
connections, consumers and their prefetch — comes from ``rabbitmqctl`` (needs root or the
Erlang cookie). Tests never restart the shared broker; they close *their own* connections
from the server side instead (found by the client-provided connection name).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

import aio_pika
import pytest

from tests.integration.conftest import IN_CI


def require_rabbitmqctl() -> None:
    """Skip the test (fail it under CI=true) when ``rabbitmqctl`` cannot reach the node."""
    try:
        usable = shutil.which("rabbitmqctl") is not None and _ctl("status").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        usable = False
    if usable:
        return
    reason = "rabbitmqctl cannot reach the local RabbitMQ node (run as root or with its cookie)"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true)")
    pytest.skip(reason)


def _ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def list_rows(*args: str) -> list[list[str]]:
    """Return the rows of ``rabbitmqctl ARGS`` (a ``list_*`` command), split on tabs."""
    done = _ctl(*args, "--no-table-headers")
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]


def connection_pids(name_part: str) -> list[str]:
    """Return the Erlang pids of the connections whose client-provided name has ``name_part``."""
    rows = list_rows("list_connections", "pid", "client_properties")
    found = []
    for pid, properties in rows:
        named = re.search(r'\{"connection_name","([^"]*)"\}', properties)
        if named is not None and name_part in named.group(1):
            found.append(pid)
    return found


def close_connections(name_part: str) -> int:
    """Close, from the server side, every connection whose name has ``name_part``; count them."""
    pids = connection_pids(name_part)
    for pid in pids:
        done = _ctl("close_connection", pid, "closed by an asynctasq test")
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl close_connection failed: {done.stderr.strip()}")
    return len(pids)


def queue_counts(queue: str) -> dict[str, tuple[int, int]]:
    """Return ``{name: (ready, unacked)}`` for ``queue`` and its companions (0s if absent)."""
    names = (queue, f"{queue}_delayed", f"{queue}_dead")
    counts = dict.fromkeys(names, (0, 0))
    for name, ready, unacked in list_rows(
        "list_queues", "name", "messages_ready", "messages_unacknowledged"
    ):
        if name in counts:
            counts[name] = (int(ready), int(unacked))
    return counts


def consumers(queue: str) -> list[int]:
    """Return the prefetch count of each consumer the broker has on ``queue``."""
    rows = list_rows("list_consumers", "queue_name", "prefetch_count")
    return [int(row[1]) for row in rows if row[0] == queue]


async def delete_topology(url: str, exchange: str, queues: Iterable[str]) -> None:
    """Delete each queue with its companions, the exchange's monitoring queues, the exchange.

    Companions: ``_delayed``, ``_dead`` and ``_completed``; monitoring queues: the catalog
    ``{exchange}.queues`` and the worker registry ``{exchange}.workers``.
    """
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for queue in queues:
            for name in (queue, f"{queue}_delayed", f"{queue}_dead", f"{queue}_completed"):
                await channel.queue_delete(name)
        for name in (f"{exchange}.queues", f"{exchange}.workers"):
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)
    finally:
        await connection.close()
