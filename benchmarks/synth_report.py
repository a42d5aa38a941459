"""Synthetic vs real Hinglish: CMI distribution, switch points, vocabulary overlap, chrF.

    python benchmarks/synth_report.py                      # writes metrics/synth_report.json + _cmi.json
    python benchmarks/synth_report.py --n 500 --targets 30 # quicker

Corpora compared (all tagged by the same word-level language identifier, cmmerge.data.lid, trained on the
GLUECoS En-Hi tags + English tweets, its HMM transition weight tuned on SentiMix dev, never trained on
SentiMix dev or test):

- real: SentiMix Hinglish test tweets, and the human Hinglish side of Hinglish-TOP test;
- ``lexical@<cmi>``: the lexical generator with the demo lexicon (data/demo/lexicon_en_hi.tsv);
- ``alignment@<cmi>``: the alignment generator, phrase table aligned by eflomal on Hinglish-TOP train+dev
  (pairs whose Hinglish side occurs in test removed).

Each generator code-mixes English tweets (TweetEval sentiment dev) and the English side of Hinglish-TOP test.
chrF (sacrebleu) scores the Hinglish-TOP outputs against the human Hinglish of the same test pairs; the
``copy`` rows are the English inputs themselves (the no-switch baseline; their CMI is the identifier's noise
floor). Vocabulary overlap is measured against the
SentiMix Hinglish train tweets. One JSON object per measurement; the last line one JSON object with all.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cmmerge.data.cleaning import CleaningParams, clean_text, keys  # noqa: E402
from cmmerge.data.lid import train_shared_lid, tune_transition_weight  # noqa: E402
from cmmerge.data.loaders import DatasetSpec, load_parallel, load_split  # noqa: E402
from cmmerge.fsutil import write_json  # noqa: E402
from cmmerge.synth.lexical import synthesize  # noqa: E402
from cmmerge.synth.pipeline import ParallelSpec, SynthesizeParams, build_lexicon  # noqa: E402
from cmmerge.synth.report import chrf, describe, plot_rows  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sentences per corpus for the statistics")
    parser.add_argument("--targets", type=float, nargs="+", default=[10.0, 20.0, 30.0, 40.0])
    parser.add_argument("--out", default="metrics/synth_report.json")
    parser.add_argument("--plot", default="metrics/synth_report_cmi.json")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    shared = Path(os.environ.get("CMMERGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    rng = random.Random(args.seed)
    cleaning = CleaningParams()

    def sample(texts: list[str]) -> list[str]:
        texts = [clean_text(t, cleaning) for t in texts]
        return rng.sample(texts, min(args.n, len(texts)))

    start = time.perf_counter()
    sentimix_test = load_split(DatasetSpec(path=str(shared / "sentimix_hinglish")), "test")
    reference = [
        clean_text(r["text"], cleaning)
        for r in load_split(DatasetSpec(path=str(shared / "sentimix_hinglish")), "train")
    ]
    sentimix_dev = load_split(DatasetSpec(path=str(shared / "sentimix_hinglish")), "dev")
    lid = train_shared_lid("hinglish", shared, exclude=keys(sentimix_test) | keys(sentimix_dev))
    tune_transition_weight(lid, sentimix_dev)
    top_test = load_parallel(shared / "hinglish_top_parallel" / "test.jsonl", "en", "cs")
    top_en, top_cs = [en for en, _ in top_test], [cs for _, cs in top_test]
    source_tweets = [r["text"] for r in load_split(DatasetSpec(path=str(shared / "tweeteval_en_sentiment")), "dev")]

    results, histograms = [], {}

    def record(name: str, texts: list[str], **extra) -> None:
        stats, hist = describe(name, texts, lid, reference)
        histograms[name] = hist
        row = {"measurement": "synth_report", **stats, **extra}
        results.append(row)
        print(json.dumps(row), flush=True)

    record("real:sentimix_hinglish_test", sample([r["text"] for r in sentimix_test]))
    record("real:hinglish_top_test_cs", sample(top_cs))
    record("copy:hinglish_top_test_en", sample(top_en), chrf=chrf(top_en, top_cs))
    # the unmodified English tweets: what the identifier's own errors make of monolingual English
    record("copy:tweets", sample(source_tweets))

    generators = {
        "lexical": SynthesizeParams(source="-", generator="lexical", lexicon=str(ROOT / "data/demo/lexicon_en_hi.tsv")),
        "alignment": SynthesizeParams(
            source="-",
            generator="alignment",
            parallel=ParallelSpec(path=str(shared / "hinglish_top_parallel"), splits=["train", "dev"]),
        ),
    }
    for gen, params in generators.items():
        t0 = time.perf_counter()
        lexicon, built = build_lexicon(params, exclude=keys([{"text": cs} for cs in top_cs]))
        build_s = time.perf_counter() - t0
        for target in args.targets:
            out = synthesize(top_en, lexicon, target, seed=args.seed)
            hyp = [r["text"] for r in out]
            own = sum(r["cmi"] for r in out) / len(out)
            record(
                f"{gen}@{target:g}:hinglish_top_test",
                sample(hyp),
                chrf=chrf(hyp, top_cs),
                generator_cmi_mean=own,
                lexicon=built,
                lexicon_build_s=round(build_s, 1),
            )
            tweets = [r["text"] for r in synthesize(source_tweets, lexicon, target, seed=args.seed)]
            record(f"{gen}@{target:g}:tweets", sample(tweets))
    summary = {
        "report": results,
        "lid_transition_weight": lid.transition_weight,
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_json(args.out, summary)
    write_json(args.plot, plot_rows(histograms))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
