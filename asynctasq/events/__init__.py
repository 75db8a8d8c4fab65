"""asynctasq.events."""
