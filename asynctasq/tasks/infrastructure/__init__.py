"""asynctasq.tasks.infrastructure."""
