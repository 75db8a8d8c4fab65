"""The README demo: a real worker process runs four real tasks on the configured broker.

Run it with ``python -m asynctasq.demo``. See :mod:`asynctasq.demo.tasks` for the tasks
and :mod:`asynctasq.demo.__main__` for what it does.
"""
