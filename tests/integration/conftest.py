"""Brokers for integration tests: a fixture per broker that yields its URL.

A broker that cannot be reached is skipped with the reason, except under ``CI=true``, where
the test fails: CI starts every broker, so an unreachable one is a real problem.
"""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}"

RABBITMQ_HOST = "127.0.0.1"
RABBITMQ_PORT = 5672
RABBITMQ_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/"


def reachable(host: str, port: int, timeout_seconds: float = 1.0) -> bool:
    """Return whether a TCP connection to ``host:port`` can be opened."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def require(name: str, host: str, port: int) -> None:
    """Skip the test (fail it under CI=true) when ``name`` is not listening on ``host:port``."""
    if reachable(host, port):
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: brokers must be running)")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """Return the URL of the local Redis, skipping (or failing under CI) when it is down."""
    require("Redis", REDIS_HOST, REDIS_PORT)
    return REDIS_URL


@pytest.fixture
def rabbitmq_url() -> str:
    """Return the URL of the local RabbitMQ, skipping (or failing under CI) when it is down."""
    require("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT)
    return RABBITMQ_URL
