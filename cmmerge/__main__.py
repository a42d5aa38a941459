"""``python -m cmmerge``: the same as the ``cmmerge`` command."""

import sys

from cmmerge.cli import main

sys.exit(main())
