"""``python -m asynctasq``: the command line (see :mod:`asynctasq.cli.main`)."""

from asynctasq.cli.main import main

raise SystemExit(main())
