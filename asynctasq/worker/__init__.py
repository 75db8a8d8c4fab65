"""The worker: ``run_worker(handle, tasks=[module], queues=[...])`` and its records."""

from asynctasq.worker.run import run_worker
from asynctasq.worker.shutdown import Shutdown
from asynctasq.worker.state import WorkerSettings, WorkerStats

__all__ = ["Shutdown", "WorkerSettings", "WorkerStats", "run_worker"]
