"""The SQS target of the worker tests: moto's server, counted and cleaned with boto3."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.sqs_server import (
    ACCOUNT,
    client,
    delete_queues,
    moto_endpoint,
    sqs_env,
    sqs_settings,
)

VOLUME = 2_000
"""Tasks of the volume test on moto, not 10,000: every moto call scans the whole queue, so a
run grows with the square of the queue's length (10,000 would take many minutes)."""

COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def _counts(endpoint: str, url: str) -> list[int]:
    sqs = client(endpoint)
    try:
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNTS))
    except sqs.exceptions.QueueDoesNotExist:
        return [0, 0, 0]
    finally:
        sqs.close()
    return [int(found["Attributes"].get(name, 0)) for name in COUNTS]


def sqs_parts(request: pytest.FixtureRequest) -> tuple[Any, ...]:
    """Return the variables, settings, sizes and cleanup of the SQS target."""
    del request
    endpoint = moto_endpoint()
    prefix = f"{endpoint}/{ACCOUNT}/"

    async def sizes(queue: str) -> dict[str, int]:
        ready, in_flight, delayed = await asyncio.to_thread(_counts, endpoint, prefix + queue)
        dead = sum(await asyncio.to_thread(_counts, endpoint, f"{prefix}{queue}_dead"))
        return {"ready": ready, "in_flight": in_flight, "delayed": delayed, "dead": dead}

    def cleanup(queue: str) -> None:
        delete_queues(endpoint, [queue])

    return sqs_env(endpoint), sqs_settings(endpoint), sizes, cleanup
