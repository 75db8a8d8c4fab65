"""Reading a whole SQS side queue (dead letters, completed-task records) without consuming it.

SQS cannot read a queue without receiving from it, so :func:`peek` receives every message
with a short visibility timeout (:data:`PEEK_SECONDS`), oldest first by ``SentTimestamp``;
the caller acts on some (:func:`delete`) and makes the others visible again at once
(:func:`unhide`). Two peeks at the same moment each see only part of the queue. When fewer
messages came than ``ApproximateNumberOfMessages`` promised, one more receive long-polls for
a second (short receives sample only some SQS servers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asynctasq.drivers import sqs_format as wire
from asynctasq.drivers.sqs_client import SQSConnection
from asynctasq.drivers.sqs_receive import batch_failures, chunks

PEEK_SECONDS = 30
"""Visibility timeout of the messages a peek holds while its caller looks at them."""


async def peek(conn: SQSConnection, operation: str, url: str) -> list[dict[str, Any]]:
    """Receive every message of the queue at ``url`` (hidden :data:`PEEK_SECONDS`), oldest first.

    Returns:
        The received messages (with ``SentTimestamp``); ``[]`` when the queue is missing.

    Raises:
        DriverError: SQS failed.

    """
    response = await conn.call(
        operation,
        "get_queue_attributes",
        url,
        missing_ok=True,
        AttributeNames=["ApproximateNumberOfMessages"],
    )
    if response is None:
        return []
    expected = int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))
    found: list[dict[str, Any]] = []
    waited = False
    while True:
        messages = await _receive(conn, operation, url, 0)
        if not messages:
            if waited or len(found) >= expected:
                break
            waited = True
            messages = await _receive(conn, operation, url, 1)
            if not messages:
                break
        found += messages
    found.sort(key=lambda m: int(m.get("Attributes", {}).get("SentTimestamp", 0)))
    return found


async def _receive(
    conn: SQSConnection, operation: str, url: str, wait: int
) -> list[dict[str, Any]]:
    response = await conn.call(
        operation,
        "receive_message",
        url,
        MaxNumberOfMessages=wire.MAX_BATCH,
        WaitTimeSeconds=wait,
        VisibilityTimeout=PEEK_SECONDS,
        MessageSystemAttributeNames=["SentTimestamp"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


async def unhide(
    conn: SQSConnection, operation: str, url: str, messages: Sequence[dict[str, Any]]
) -> None:
    """Make peeked ``messages`` visible again at once.

    Raises:
        DriverError: SQS failed.

    """
    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
        for i, m in enumerate(messages)
    ]
    for part in chunks(entries):
        await conn.call(operation, "change_message_visibility_batch", url, Entries=list(part))


async def delete(
    conn: SQSConnection, operation: str, url: str, messages: Sequence[dict[str, Any]]
) -> int:
    """Delete peeked ``messages``; return how many SQS deleted.

    Raises:
        DriverError: SQS failed.

    """
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    deleted = 0
    for part in chunks(entries):
        response = await conn.call(operation, "delete_message_batch", url, Entries=list(part))
        deleted += len(part) - len(batch_failures(response))
    return deleted
