"""A moto SQS server for the integration tests: one per test process, on a free loopback port.

``moto_endpoint()`` starts moto's server (:mod:`tests.integration.moto_sqs`) the first
time it is called (with xdist, once per worker process) and stops it when the process
exits. If moto cannot start, the test is skipped locally and fails under ``CI=true``.
"""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from asynctasq.config.records import SQSConfig
from tests.integration.conftest import IN_CI

HOST = "127.0.0.1"
ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY_ID = "testing-key-id"
SECRET = "testing-secret-key"
START_SECONDS = 30.0
LAUNCHER = Path(__file__).with_name("moto_sqs.py")
"""moto's server with a thread-safe SQS backend (see that module)."""

_server: dict[str, Any] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _start() -> str:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), HOST, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop, process)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return f"http://{HOST}:{port}"
        except OSError:
            time.sleep(0.05)
    _stop(process)
    reason = f"moto's SQS server did not start on {HOST}:{port}"
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every broker must be available)")
    pytest.skip(reason)


def moto_endpoint() -> str:
    """Return the URL of this process's moto server, starting it on first use."""
    if "url" not in _server:
        _server["url"] = _start()
    url: str = _server["url"]
    return url


def sqs_settings(endpoint: str, **extra: Any) -> dict[str, Any]:
    """Return the ``sqs`` settings for the moto server at ``endpoint`` (fake credentials)."""
    return {
        "region_name": REGION,
        "queue_url_prefix": f"{endpoint}/{ACCOUNT}/",
        "aws_access_key_id": KEY_ID,
        "aws_secret_access_key": SECRET,
        "endpoint_url": endpoint,
        **extra,
    }


def sqs_config(endpoint: str, **extra: Any) -> SQSConfig:
    """Return an ``SQSConfig`` for the moto server at ``endpoint``."""
    return SQSConfig(**sqs_settings(endpoint, **extra))


def sqs_env(endpoint: str, **extra: str) -> dict[str, str]:
    """Return the ``ASYNCTASQ_SQS_*`` variables for the moto server at ``endpoint``."""
    settings = sqs_settings(endpoint)
    env = {
        "ASYNCTASQ_DRIVER": "sqs",
        "ASYNCTASQ_SQS_REGION": settings["region_name"],
        "ASYNCTASQ_SQS_QUEUE_URL_PREFIX": settings["queue_url_prefix"],
        "ASYNCTASQ_SQS_AWS_ACCESS_KEY_ID": KEY_ID,
        "ASYNCTASQ_SQS_AWS_SECRET_ACCESS_KEY": SECRET,
        "ASYNCTASQ_SQS_ENDPOINT_URL": endpoint,
    }
    env.update(extra)
    return env


def client(endpoint: str) -> Any:
    """Return a plain boto3 SQS client on the moto server (for inspection and clean-up)."""
    return boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def delete_queues(endpoint: str, names: Sequence[str]) -> None:
    """Delete the queues ``names`` and their side queues (missing ones are fine)."""
    sqs = client(endpoint)
    for name in names:
        for suffix in ("", "_dead", "_completed"):
            with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
                sqs.delete_queue(QueueUrl=f"{endpoint}/{ACCOUNT}/{name}{suffix}")
    sqs.close()
