"""Fixtures of the merge tests: tiny random checkpoints of three layouts, each with two perturbed copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import ARCHS, perturbed, tiny_model


@pytest.fixture(scope="session")
def family(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """``{arch: {"base": …, "a": …, "b": …}}`` for BERT, XLM-R and Llama (6 blocks each)."""
    root = tmp_path_factory.mktemp("merge_family")
    out = {}
    for arch in ARCHS:
        base = tiny_model(arch, root / arch / "base")
        out[arch] = {
            "base": base,
            "a": perturbed(base, root / arch / "a", seed=1),
            "b": perturbed(base, root / arch / "b", seed=2),
        }
    return out
