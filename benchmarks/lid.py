"""Word-level language-ID accuracy against the SentiMix gold word tags.

    python benchmarks/lid.py                  # both pairs, the default identifier
    python benchmarks/lid.py --all            # + ablations: without HMM context, without English tweets
    python benchmarks/lid.py --pairs hinglish

The identifier (cmmerge.data.lid.train_shared_lid) is trained on the GLUECoS word-tagged files of the pair
in ``../shared/data/cpt_unlabeled/raw`` (LID + UD-POS for En-Hi, LID + Miami-Bangor POS for En-Es) plus the
words of English tweets (TweetEval hate train): other corpora than SentiMix, and any training sentence that
also occurs in the scored SentiMix split is removed first. Scored on the SentiMix test split of the pair.
One JSON object per measurement; the last line is one JSON object with all of them.
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
from cmmerge.data.lid import GLUECOS_TAGGED, train_shared_lid, tune_transition_weight, word_accuracy  # noqa: E402
from cmmerge.data.loaders import DatasetSpec, load_split  # noqa: E402

PAIRS = {"hinglish": "sentimix_hinglish", "spanglish": "sentimix_spanglish"}


def shared_data() -> Path:
    return Path(os.environ.get("CMMERGE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=sorted(PAIRS), choices=sorted(PAIRS))
    parser.add_argument("--all", action="store_true", help="also the ablations: no HMM context, no English tweets")
    parser.add_argument("--split", default="test", help="SentiMix split to score (default: test)")
    args = parser.parse_args()
    shared = shared_data()
    results = []
    for pair in args.pairs:
        folder = PAIRS[pair]
        gold = load_split(DatasetSpec(path=str(shared / folder)), args.split)
        # the HMM's transition weight is tuned on the SentiMix dev split, never on the scored split
        dev = load_split(DatasetSpec(path=str(shared / folder)), "dev")
        variants = [(True, True), (False, True), (True, False), (False, False)]
        for context, mono in variants[: None if args.all else 1]:
            start = time.perf_counter()
            lid = train_shared_lid(pair, shared, exclude=keys(gold) | keys(dev), context=context, english_tweets=mono)
            tuned = tune_transition_weight(lid, dev) if context else {}
            fitted = time.perf_counter()
            scores = word_accuracy(lid, gold)
            row: dict = {
                "measurement": "lid_word_accuracy",
                "pair": pair,
                "scored_on": f"{folder} [{args.split}]",
                "trained_on": list(GLUECOS_TAGGED[pair]),
                "method": "char n-gram logistic regression" + (" + HMM context (Viterbi)" if context else ""),
                "english_tweets": "tweeteval_en_hate [train]" if mono else None,
                **lid.stats,
                "transition_weight": lid.transition_weight if context else None,
                "dev_language_word_accuracy_by_weight": tuned,
                **scores,
                "train_s": round(fitted - start, 1),
                "tag_s": round(time.perf_counter() - fitted, 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"lid": results}))


if __name__ == "__main__":
    main()
