"""asynctasq.cli."""
