"""asynctasq.config."""
