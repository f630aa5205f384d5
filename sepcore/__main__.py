"""``python -m sepcore`` runs the ``sepcore`` command (:mod:`sepcore.cli`)."""

from sepcore.cli import main

raise SystemExit(main())
