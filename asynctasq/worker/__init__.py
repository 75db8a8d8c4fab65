"""asynctasq.worker."""
