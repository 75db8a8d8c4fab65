"""asynctasq: an async-first background task queue for Python."""
