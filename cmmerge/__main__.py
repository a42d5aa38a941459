"""``python -m cmmerge`` (minimal placeholder: the lead's version replaces this file)."""

import sys

from cmmerge.cli import main

sys.exit(main())
