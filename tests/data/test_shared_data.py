"""Every folder of the shared data loads through cmmerge's own loaders, with the counts its SOURCE.md states."""

from __future__ import annotations

from collections import Counter

import pytest

from cmmerge.data.loaders import DatasetSpec, load_corpus, load_parallel, load_split, load_tagged

# rows per split, from each folder's SOURCE.md (None: the folder has no such split)
LABELLED = {
    "sentimix_hinglish": (14000, 3000, 3000),
    "sentimix_spanglish": (11998, 1500, 1502),
    "gluecos_sail_hinglish": (10080, 1260, None),
    "gluecos_vilares_spanglish": (1850, 231, None),
    "dravidian_tamil_sentiment": (12607, 1565, 1572),
    "bohra_hinglish_hate": (3662, 458, 458),
    "hot_hinglish_offensive": (2547, 324, 318),
    "tweeteval_en_sentiment": (None, 2000, 12284),
    "tweeteval_en_hate": (8993, 999, 2970),
    "tweeteval_en_offensive": (11916, 1324, 860),
}


@pytest.mark.parametrize("name", sorted(LABELLED))
def test_labelled_folder_counts(shared_data, name):
    spec = DatasetSpec(path=str(shared_data / name))
    for split, expected in zip(("train", "dev", "test"), LABELLED[name], strict=True):
        rows = load_split(spec, split, required=False)
        if expected is None:
            assert rows is None, f"{name} has an unexpected {split} split"
            continue
        assert len(rows) == expected, f"{name} [{split}]"
        assert all(r["text"] is not None and r["label"] for r in rows)


def test_label_distribution_matches_source(shared_data):
    rows = load_split(DatasetSpec(path=str(shared_data / "sentimix_hinglish")), "test")
    assert Counter(r["label"] for r in rows) == {"neutral": 1100, "positive": 1000, "negative": 900}
    tags = Counter(t for r in rows for t in r["langs"])
    assert set(tags) <= {"Hin", "Eng", "O", "EMT"}


def test_splits_redirect(shared_data):
    """TweetEval sentiment has no train split; ``splits: {train: test}`` reads its test file as our train."""
    spec = DatasetSpec(path=str(shared_data / "tweeteval_en_sentiment"), splits={"train": "test"})
    assert len(load_split(spec, "train")) == 12284
    assert len(load_split(spec, "dev")) == 2000


def test_raw_sentimix_conll(shared_data):
    """The raw SentiMix CoNLL files give the converted counts; dropped blank tokens are counted, not lost."""
    raw = shared_data / "sentimix_hinglish" / "raw"
    counts = Counter()
    train = load_split(DatasetSpec(path=str(raw / "train_14k_split_conll.txt")), "train", counts=counts)
    assert len(train) == 14000
    assert counts["dropped_empty_token"] == 32  # SOURCE.md: train 32 whitespace-only tokens dropped
    dev = load_split(DatasetSpec(path=str(raw / "dev_3k_split_conll.txt")), "dev")
    assert len(dev) == 3000 and all(len(r["tokens"]) == len(r["langs"]) for r in dev)
    spanglish = load_split(DatasetSpec(path=str(shared_data / "sentimix_spanglish/raw/train_conll_spanglish.txt")), "x")
    assert len(spanglish) == 15000


def test_hf_local_folder(shared_data):
    """A folder of JSONL splits through ``datasets.load_dataset`` gives the same rows as the JSONL loader."""
    pytest.importorskip("datasets")
    path = str(shared_data / "gluecos_vilares_spanglish")
    hf = load_split(DatasetSpec(path=path, format="hf"), "dev")
    plain = load_split(DatasetSpec(path=path), "dev")
    assert [r["text"] for r in hf] == [r["text"] for r in plain]
    assert len(load_split(DatasetSpec(path=path, format="hf"), "train")) == 1850


def test_hinglish_top_parallel(shared_data):
    for split, n in (("train", 2993), ("dev", 1390), ("test", 6513)):
        pairs = load_parallel(shared_data / "hinglish_top_parallel" / f"{split}.jsonl", "en", "cs")
        assert len(pairs) == n and all(en and cs for en, cs in pairs)


def test_cpt_plain_text(shared_data):
    for name, n in (
        ("hinglish.txt", 17425),
        ("spanglish.txt", 30587),
        ("hinglish_mixed_tagged.txt", 3634),
        ("spanglish_mixed_tagged.txt", 2218),
    ):
        assert len(load_corpus(shared_data / "cpt_unlabeled" / name)) == n, name


def test_gluecos_tagged_blocks(shared_data):
    """GLUECoS LID files (blank-line separated token<TAB>tag): SOURCE.md counts 3004 En-Hi, 10998 En-Es sentences."""
    raw = shared_data / "cpt_unlabeled" / "raw"
    for task, n in (("LID_EN_HI_Romanized", 3004), ("LID_EN_ES", 10998)):
        rows = [r for s in ("train", "validation", "test") for r in load_tagged(raw / f"{task}_{s}.txt")]
        assert len(rows) == n, task
