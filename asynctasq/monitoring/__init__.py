"""Monitoring: queue statistics, live workers, completed tasks, the dead-letter workflow.

Plain functions over a handle (:mod:`.stats`, :mod:`.dead_letters`) and
:class:`~asynctasq.monitoring.service.MonitoringService`, the same bound to one handle. The
``asynctasq stats`` and ``asynctasq dlq`` commands are built on them.
"""

from asynctasq.monitoring.dead_letters import (
    find_dead_letter,
    list_dead_letters,
    purge_dead_letters,
    requeue_dead_letters,
)
from asynctasq.monitoring.service import MonitoringService
from asynctasq.monitoring.stats import QueueStats, Snapshot, completed_tasks, snapshot

__all__ = [
    "MonitoringService",
    "QueueStats",
    "Snapshot",
    "completed_tasks",
    "find_dead_letter",
    "list_dead_letters",
    "purge_dead_letters",
    "requeue_dead_letters",
    "snapshot",
]
