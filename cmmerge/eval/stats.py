"""Statistics over seeds and test items: intervals and paired significance tests.

Two sources of variance matter in these comparisons: the training seed and the sample of test
items. ``seed_interval`` summarises the first (t-interval over per-seed scores); the bootstrap
functions resample test items (keeping every seed's prediction for an item together) for the second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def _encode(gold: Sequence[str], preds: Sequence[Sequence[str]], labels: Sequence[str]) -> tuple[np.ndarray, int]:
    """``gold * K + pred`` cell codes of the K×K confusion matrix, one row per system/seed; and K.

    Macro-F1 of a resample only needs the confusion counts of the resampled items, so scoring
    thousands of resamples is a bincount each instead of a call to scikit-learn (which validates
    and re-encodes its inputs every time and dominates the run time of a bootstrap).
    """
    classes = list(dict.fromkeys([*labels, *gold, *(x for p in preds for x in p)]))
    index = {c: i for i, c in enumerate(classes)}
    k = len(classes)
    g = np.array([index[x] for x in gold], dtype=np.int64)
    codes = np.stack([g * k + np.array([index[x] for x in p], dtype=np.int64) for p in preds])
    return codes, k


def _macro_f1_of_counts(counts: np.ndarray) -> np.ndarray:
    """Macro-F1 from confusion matrices ``(..., K, K)`` (rows gold, columns predicted).

    Like scikit-learn's ``f1_score(average="macro", labels=<classes in gold or predictions>)``: classes
    that neither occur nor are predicted in a resample are left out of the average.
    """
    tp = np.diagonal(counts, axis1=-2, axis2=-1).astype(float)
    gold_n = counts.sum(axis=-1)
    pred_n = counts.sum(axis=-2)
    denom = gold_n + pred_n  # 2tp + fp + fn
    present = denom > 0
    f1 = np.where(present, 2 * tp / np.maximum(denom, 1), 0.0)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def _seed_mean_f1(codes: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Seed-averaged macro-F1 for each row of resample indices ``idx`` (shape ``(B, n)``)."""
    n_rows = idx.shape[0]
    out = np.zeros(n_rows)
    offsets = (np.arange(n_rows) * k * k)[:, None]
    for seed_codes in codes:
        cells = (seed_codes[idx] + offsets).ravel()
        counts = np.bincount(cells, minlength=n_rows * k * k).reshape(n_rows, k, k)
        out += _macro_f1_of_counts(counts)
    return out / len(codes)


def _resample_scores(codes_list: list[np.ndarray], k: int, n: int, n_boot: int, seed: int) -> list[np.ndarray]:
    """Scores of each system on the same ``n_boot`` resamples (drawn in blocks to bound memory)."""
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = [[] for _ in codes_list]
    block = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        # one draw per resample, in order, so a resample is the same whatever the block size
        idx = np.stack([rng.integers(0, n, n) for _ in range(min(block, n_boot - done))])
        for acc, codes in zip(out, codes_list, strict=True):
            acc.append(_seed_mean_f1(codes, k, idx))
        done += len(idx)
    return [np.concatenate(acc) for acc in out]


def bootstrap_interval(
    gold: Sequence[str],
    preds: Sequence[Sequence[str]],
    labels: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Percentile bootstrap 95% interval of the seed-averaged macro-F1, resampling test items."""
    codes, k = _encode(gold, preds, labels)
    n = codes.shape[1]
    point = float(_seed_mean_f1(codes, k, np.arange(n)[None, :])[0])
    (samples,) = _resample_scores([codes], k, n, n_boot, seed)
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
    codes, k = _encode(gold, [*preds_a, *preds_b], labels)
    ca, cb = codes[: len(preds_a)], codes[len(preds_a) :]
    n = codes.shape[1]
    full = np.arange(n)[None, :]
    delta = float(_seed_mean_f1(ca, k, full)[0] - _seed_mean_f1(cb, k, full)[0])
    score_a, score_b = _resample_scores([ca, cb], k, n, n_boot, seed)
    diffs = score_a - score_b
    if np.all(diffs == 0):
        p = 1.0
    else:
        tail = min(np.mean(diffs <= 0), np.mean(diffs >= 0))
        p = float(min(1.0, max(2 * tail, 1 / (n_boot + 1))))
    return {"delta_macro_f1": float(delta), "p_value": p, "n_boot": n_boot}


def approximate_randomization(
    gold: Sequence[str],
    preds_a: Sequence[Sequence[str]],
    preds_b: Sequence[Sequence[str]],
    labels: Sequence[str],
    n_trials: int = 1000,
    seed: int = 0,
) -> dict:
    """Approximate randomisation test of seed-averaged macro-F1, system A vs system B (Noreen 1989).

    Under the null hypothesis the two systems are exchangeable on every item: each trial swaps the
    two systems' predictions on a random half of the items (all seeds of an item together; seed i of
    A is paired with seed i of B) and records |ΔF1|. The p-value is the share of trials at least as
    extreme as the observed difference, with the +1 correction so it is never 0.
    """
    if len(preds_a) != len(preds_b):
        raise ValueError(f"randomisation pairs seeds: {len(preds_a)} runs of A but {len(preds_b)} of B")
    codes, k = _encode(gold, [*preds_a, *preds_b], labels)
    ca, cb = codes[: len(preds_a)], codes[len(preds_a) :]
    n = codes.shape[1]
    full = np.arange(n)[None, :]
    delta = float(_seed_mean_f1(ca, k, full)[0] - _seed_mean_f1(cb, k, full)[0])
    rng = np.random.default_rng(seed)
    swap = rng.random((n_trials, n)) < 0.5
    diffs = np.zeros(n_trials)
    offsets = (np.arange(n_trials) * k * k)[:, None]
    for sa, sb in zip(ca, cb, strict=True):
        for sign, (x, y) in ((1, (sa, sb)), (-1, (sb, sa))):
            cells = (np.where(swap, y[None, :], x[None, :]) + offsets).ravel()
            counts = np.bincount(cells, minlength=n_trials * k * k).reshape(n_trials, k, k)
            diffs += sign * _macro_f1_of_counts(counts) / len(ca)
    # a tolerance so that a trial that reproduces the observed split is counted despite float rounding
    extreme = np.abs(diffs) >= abs(delta) - 1e-12
    p = float((extreme.sum() + 1) / (n_trials + 1))
    return {"delta_macro_f1": delta, "p_value": p, "n_trials": n_trials}
