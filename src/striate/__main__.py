"""``python -m striate``: the ``striate`` command (see ``striate.tools.cli``)."""
from striate.tools.cli import main

raise SystemExit(main())
