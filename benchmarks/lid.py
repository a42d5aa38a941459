"""Word-level language-ID accuracy against the SentiMix gold word tags.

    python benchmarks/lid.py                  # both pairs, with and without the HMM context
    python benchmarks/lid.py --pairs hinglish

The identifier (cmmerge.data.lid) is trained on the GLUECoS word-tagged files of the pair in
``../shared/data/cpt_unlabeled/raw`` (LID + UD-POS for En-Hi, LID + Miami-Bangor POS for En-Es): other
corpora than SentiMix, and any training sentence that also occurs in the scored SentiMix split is removed
first. Scored on the SentiMix test split of the pair. One JSON object per measurement; the last line is one
JSON object with all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cmmerge.data.cleaning import keys  # noqa: E402
from cmmerge.data.lid import train_lid_from_files, word_accuracy  # noqa: E402
from cmmerge.data.loaders import DatasetSpec, load_split  # noqa: E402

PAIRS = {
    "hinglish": (
        "sentimix_hinglish",
        ["LID_EN_HI_Romanized", "POS_EN_HI_UD_Romanized"],
    ),
    "spanglish": (
        "sentimix_spanglish",
        ["LID_EN_ES", "POS_EN_ES"],
    ),
}


def shared_data() -> Path:
    return Path(os.environ.get("CMMERGE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def training_files(shared: Path, tasks: list[str]) -> list[Path]:
    raw = shared / "cpt_unlabeled" / "raw"
    return [raw / f"{task}_{split}.txt" for task in tasks for split in ("train", "validation", "test")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=sorted(PAIRS), choices=sorted(PAIRS))
    parser.add_argument("--all", action="store_true", help="also train with English tweets (TweetEval hate train)")
    parser.add_argument("--split", default="test", help="SentiMix split to score (default: test)")
    args = parser.parse_args()
    shared = shared_data()
    results = []
    for pair in args.pairs:
        folder, tasks = PAIRS[pair]
        gold = load_split(DatasetSpec(path=str(shared / folder)), args.split)
        english = [r["text"] for r in load_split(DatasetSpec(path=str(shared / "tweeteval_en_hate")), "train")]
        variants = [(True, None), (False, None), (True, {"en": english}), (False, {"en": english})]
        for context, mono in variants[: None if args.all else 2]:
            start = time.perf_counter()
            lid = train_lid_from_files(
                training_files(shared, tasks), exclude=keys(gold), context=context, monolingual=mono
            )
            fitted = time.perf_counter()
            scores = word_accuracy(lid, gold)
            row = {
                "measurement": "lid_word_accuracy",
                "pair": pair,
                "scored_on": f"{folder} [{args.split}]",
                "trained_on": tasks,
                "method": "char n-gram logistic regression" + (" + HMM context (Viterbi)" if context else ""),
                "english_tweets": "tweeteval_en_hate [train]" if mono else None,
                **lid.stats,
                **scores,
                "train_s": round(fitted - start, 1),
                "tag_s": round(time.perf_counter() - fitted, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"lid": results}))


if __name__ == "__main__":
    main()
