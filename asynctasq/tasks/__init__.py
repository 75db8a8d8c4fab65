"""asynctasq.tasks."""
