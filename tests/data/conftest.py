"""Where the shared real data sets live: ``<repo>/../shared/data``, or ``$CMMERGE_SHARED_DATA``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    env = os.environ.get("CMMERGE_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "README.md").is_file():
        pytest.skip(f"shared data sets not found at {root} (set CMMERGE_SHARED_DATA to their folder)")
    return root
