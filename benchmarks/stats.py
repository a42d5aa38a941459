"""Time of the report's tests at the real experiment's size (issue: vectorised, ≥ 10,000 resamples).

    python benchmarks/stats.py [--items 2999] [--methods 13] [--seeds 3] [--n-boot 10000]

Prints, for one test set of ``--items`` items and ``--methods`` methods of ``--seeds`` runs each: the time to
score every run on the shared item resamples (:func:`resampled_seed_scores`), the time of the per-method
tests against the reference (:func:`seed_item_test`), and the same scoring done the slow way —
scikit-learn's ``f1_score`` per resample and run — on 200 resamples, extrapolated, as the baseline.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from cmmerge.eval.stats import resampled_seed_scores, seed_item_test

LABELS = ["negative", "neutral", "positive"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=2999)
    ap.add_argument("--methods", type=int, default=13)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-boot", type=int, default=10_000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    gold = rng.choice(LABELS, args.items).tolist()
    preds = {
        f"m{i}": [
            np.where(rng.random(args.items) < 0.6, gold, rng.choice(LABELS, args.items)).tolist()
            for _ in range(args.seeds)
        ]
        for i in range(args.methods)
    }
    t0 = time.perf_counter()
    scores = resampled_seed_scores(gold, preds, LABELS, args.n_boot, seed=0)
    t1 = time.perf_counter()
    f1 = {m: s[:, 0] for m, s in resampled_seed_scores(gold, preds, LABELS, 1, seed=0).items()}  # any per-run scores
    for m in list(preds)[1:]:
        seed_item_test(scores[m], scores["m0"], f1[m], f1["m0"])
    t2 = time.perf_counter()

    from sklearn.metrics import f1_score

    g = np.asarray(gold)
    p = np.asarray(preds["m0"][0])
    n_slow = 200
    t3 = time.perf_counter()
    for _ in range(n_slow):
        idx = rng.integers(0, args.items, args.items)
        f1_score(g[idx], p[idx], average="macro")
    per_run_resample = (time.perf_counter() - t3) / n_slow
    slow_total = per_run_resample * args.n_boot * args.methods * args.seeds
    print(
        json.dumps(
            {
                "items": args.items,
                "methods": args.methods,
                "seeds": args.seeds,
                "n_boot": args.n_boot,
                "score_resamples_s": round(t1 - t0, 2),
                "tests_s": round(t2 - t1, 2),
                "sklearn_per_resample_s_extrapolated": round(slow_total, 1),
                "speedup": round(slow_total / (t2 - t0), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
