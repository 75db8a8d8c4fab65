"""asynctasq.drivers."""
