"""``python -m app`` is the same as the ``gridcollect`` command."""

from app.cli import main

raise SystemExit(main())
