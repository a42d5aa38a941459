"""Statistics over seeds and test items: intervals and paired significance tests.

Two sources of variance matter in these comparisons: the training seed and the sample of test
items. ``seed_interval`` summarises the first (t-interval over per-seed scores); the bootstrap
functions resample test items (keeping every seed's prediction for an item together) for the second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def seed_interval(scores: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean, sample std and the Student-t interval of the mean over seeds (std 0, interval = mean for 1 seed)."""
    from scipy import stats

    x = np.asarray(scores, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no scores")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "n_seeds": n}


def _macro_f1_fn(labels: Sequence[str]) -> Callable[[np.ndarray, np.ndarray], float]:
    from sklearn.metrics import f1_score

    def fn(gold: np.ndarray, pred: np.ndarray) -> float:
        present = sorted(set(gold.tolist()) | set(pred.tolist()))
        return float(f1_score(gold, pred, labels=present, average="macro", zero_division=0))

    return fn


def _seed_mean(metric, gold: np.ndarray, preds: np.ndarray, idx: np.ndarray) -> float:
    return float(np.mean([metric(gold[idx], p[idx]) for p in preds]))


def bootstrap_interval(
    gold: Sequence[str],
    preds: Sequence[Sequence[str]],
    labels: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Percentile bootstrap 95% interval of the seed-averaged macro-F1, resampling test items."""
    gold_a, preds_a = np.asarray(gold), np.asarray(preds)
    metric = _macro_f1_fn(labels)
    rng = np.random.default_rng(seed)
    n = len(gold_a)
    point = _seed_mean(metric, gold_a, preds_a, np.arange(n))
    samples = [_seed_mean(metric, gold_a, preds_a, rng.integers(0, n, n)) for _ in range(n_boot)]
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return {"macro_f1": point, "boot_ci95_low": float(lo), "boot_ci95_high": float(hi), "n_boot": n_boot}


def paired_bootstrap(
    gold: Sequence[str],
    preds_a: Sequence[Sequence[str]],
    preds_b: Sequence[Sequence[str]],
    labels: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Paired bootstrap test of seed-averaged macro-F1, system A vs system B, on the same items.

    Each resample draws test items with replacement and scores both systems on the same draw.
    The two-sided p-value is twice the smaller tail of the resampled difference around zero
    (Koehn 2004; Berg-Kirkpatrick et al. 2012), floored at 1/(n_boot+1).
    """
    gold_a = np.asarray(gold)
    pa, pb = np.asarray(preds_a), np.asarray(preds_b)
    metric = _macro_f1_fn(labels)
    n = len(gold_a)
    full = np.arange(n)
    delta = _seed_mean(metric, gold_a, pa, full) - _seed_mean(metric, gold_a, pb, full)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        diffs[i] = _seed_mean(metric, gold_a, pa, idx) - _seed_mean(metric, gold_a, pb, idx)
    if np.all(diffs == 0):
        p = 1.0
    else:
        tail = min(np.mean(diffs <= 0), np.mean(diffs >= 0))
        p = float(min(1.0, max(2 * tail, 1 / (n_boot + 1))))
    return {"delta_macro_f1": float(delta), "p_value": p, "n_boot": n_boot}
