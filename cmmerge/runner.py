"""Entry-point wrapper shared by the stage scripts and the command line.

A :class:`~cmmerge.errors.CmmergeError` becomes one line on stderr and exit status 2; outputs are
written atomically by the library, so a failed stage leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from cmmerge.errors import CmmergeError

log = logging.getLogger("cmmerge")


def setup_logging(level: int = logging.INFO) -> None:
    """Readable progress logs, and the Hugging Face stack kept offline and quiet unless asked."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # The default pipeline must never reach for the hub; a user who wants downloads sets these to 0.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_main(fn: Callable[[], object]) -> int:
    """Run ``fn`` and turn user errors into a one-line message and exit status 2."""
    setup_logging()
    try:
        fn()
    except CmmergeError as exc:
        print(f"cmmerge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cmmerge: interrupted", file=sys.stderr)
        return 130
    return 0


def stage_main(fn: Callable[[], object]) -> None:
    """``if __name__ == "__main__": stage_main(main)`` in every stage script."""
    sys.exit(run_main(fn))
