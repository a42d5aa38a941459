"""Fixtures of the training tests: the demo data prepared once per session, with a CPT corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmmerge.data.cleaning import CleaningParams
from cmmerge.data.corpus import CorpusParams, build_corpus
from cmmerge.data.loaders import DatasetSpec
from cmmerge.data.prepare import PrepareParams, prepare

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    params = PrepareParams(
        task=DatasetSpec(str(DEMO / "hinglish_sentiment")),
        english=DatasetSpec(str(DEMO / "english_sentiment")),
        cleaning=CleaningParams(),
        max_train=60,
        max_english=60,
    )
    prepare(params, root / "prepared", root / "data.json")
    build_corpus(
        CorpusParams(real=str(DEMO / "corpus"), mix="real", max_lines=300),
        None,
        root / "prepared",
        None,
        root / "corpus",
        root / "corpus.json",
    )
    return root
