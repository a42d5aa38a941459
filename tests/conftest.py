"""Shared fixtures: tiny random models (built once per session, offline) and the repository root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `import tiny`

# The test suite must never reach for the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Folders of tiny random checkpoints: ``llama`` (CLM), ``xlmr`` (MLM), ``bert`` (bare, no MLM head)."""
    import tiny

    root = tmp_path_factory.mktemp("tiny_models")
    return {
        "llama": tiny.tiny_llama(root / "llama"),
        "xlmr": tiny.tiny_xlmr(root / "xlmr"),
        "bert": tiny.tiny_bert(root / "bert"),
    }
