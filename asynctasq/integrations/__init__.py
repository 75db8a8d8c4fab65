"""asynctasq.integrations."""
