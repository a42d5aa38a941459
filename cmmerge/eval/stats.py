"""Statistics over seeds and test items: intervals, significance tests, multiple comparisons, chance baselines.

Two sources of variance matter in these comparisons: the training seed and the sample of test
items. ``seed_interval`` summarises the first (t-interval over per-seed scores). The report's test
is :func:`two_level_bootstrap`, which resamples both: test items (shared by the compared systems) and
each system's training runs. ``paired_bootstrap`` and ``approximate_randomization`` resample items
only, treating the trained models as fixed; they answer "is this set of models better on this
population of items", not "is this method better", and are kept for that narrower question.
p-values of one table are corrected together with :func:`holm`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

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


def _run_f1(codes: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Macro-F1 of every run (row of ``codes``) on each row of resample indices ``idx``: ``(n_runs, B)``."""
    n_rows = idx.shape[0]
    offsets = (np.arange(n_rows) * k * k)[:, None]
    out = np.empty((len(codes), n_rows))
    for r, run_codes in enumerate(codes):
        cells = (run_codes[idx] + offsets).ravel()
        out[r] = _macro_f1_of_counts(np.bincount(cells, minlength=n_rows * k * k).reshape(n_rows, k, k))
    return out


def _seed_mean_f1(codes: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Seed-averaged macro-F1 for each row of resample indices ``idx`` (shape ``(B, n)``)."""
    return _run_f1(codes, k, idx).mean(axis=0)


def _resampled_run_f1(codes: np.ndarray, k: int, n_boot: int, seed: int) -> np.ndarray:
    """:func:`_run_f1` on ``n_boot`` item resamples drawn from ``seed``, in blocks to bound memory."""
    n = codes.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((len(codes), n_boot))
    block = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    for start in range(0, n_boot, block):
        # one draw per resample, in order, so a resample is the same whatever the block size
        idx = np.stack([rng.integers(0, n, n) for _ in range(min(block, n_boot - start))])
        out[:, start : start + len(idx)] = _run_f1(codes, k, idx)
    return out


def _two_sided_p(diffs: np.ndarray) -> float:
    """Twice the smaller share of resampled differences on either side of 0, floored at 1/(B+1); 1 if all are 0."""
    if np.all(diffs == 0):
        return 1.0
    tail = min(np.mean(diffs <= 0), np.mean(diffs >= 0))
    return float(min(1.0, max(2 * tail, 1 / (len(diffs) + 1))))


def bootstrap_interval(
    gold: Sequence[str],
    preds: Sequence[Sequence[str]],
    labels: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Percentile bootstrap 95% interval of the seed-averaged macro-F1, resampling test items."""
    codes, k = _encode(gold, preds, labels)
    point = float(_seed_mean_f1(codes, k, np.arange(codes.shape[1])[None, :])[0])
    samples = _resampled_run_f1(codes, k, n_boot, seed).mean(axis=0)
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
    scores = resampled_seed_scores(gold, {"a": preds_a, "b": preds_b}, labels, n_boot, seed)
    codes, k = _encode(gold, [*preds_a, *preds_b], labels)
    full = np.arange(codes.shape[1])[None, :]
    delta = float(_seed_mean_f1(codes[: len(preds_a)], k, full)[0] - _seed_mean_f1(codes[len(preds_a) :], k, full)[0])
    p = _two_sided_p(scores["a"].mean(axis=0) - scores["b"].mean(axis=0))
    return {"delta_macro_f1": delta, "p_value": p, "n_boot": n_boot}


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


# --- statistics over seeds and items together ------------------------------------------------------------------


def resampled_seed_scores(
    gold: Sequence[str],
    preds: Mapping[str, Sequence[Sequence[str]]],
    labels: Sequence[str],
    n_boot: int = 10_000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Macro-F1 of every run of every system on the same ``n_boot`` resamples of the test items.

    ``preds`` maps a system name to its runs (one prediction list per training seed). Returns, per
    system, an array ``(n_runs, n_boot)``: row ``s`` is run ``s`` scored on each resample. All systems
    see the same item resamples (drawn from ``seed``), so differences between them are paired over
    items; :func:`two_level_bootstrap` then resamples the runs. One bincount per run and block of
    resamples (``python benchmarks/stats.py`` times it at the real experiment's size).
    """
    names = list(preds)
    codes, k = _encode(gold, [p for name in names for p in preds[name]], labels)
    out = _resampled_run_f1(codes, k, n_boot, seed)
    result, start = {}, 0
    for name in names:
        result[name] = out[start : start + len(preds[name])]
        start += len(preds[name])
    return result


def _resample_runs(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean over a resample of the runs (drawn with replacement) for each item resample: ``(n_boot,)``."""
    n_runs, n_boot = scores.shape
    pick = rng.integers(0, n_runs, (n_boot, n_runs))
    return scores[pick, np.arange(n_boot)[:, None]].mean(axis=1)


def two_level_bootstrap(
    scores_a: np.ndarray, scores_b: np.ndarray, point_a: float, point_b: float, seed: int = 0
) -> dict:
    """Two-level bootstrap test of seed-mean macro-F1, system A vs system B.

    ``scores_a``/``scores_b`` are :func:`resampled_seed_scores` arrays of both systems on the same item
    resamples. Each resample also draws A's and B's training runs with replacement, independently (a
    run of A shares nothing with a run of B but the items), so both sources of variance count: which
    test items, and which training seeds. A method that is better on one lucky seed only is not
    significant, since a third of the resamples of 3 seeds leave that seed out. The two-sided p-value
    is twice the smaller share of resampled differences on either side of zero, floored at
    ``1/(n_boot+1)``; the interval is the percentile interval of the difference.
    """
    if scores_a.shape[1] != scores_b.shape[1]:
        raise ValueError("both systems must be scored on the same item resamples")
    n_boot = scores_a.shape[1]
    rng = np.random.default_rng(seed)
    diffs = _resample_runs(scores_a, rng) - _resample_runs(scores_b, rng)
    p = _two_sided_p(diffs)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {
        "delta_macro_f1": float(point_a - point_b),
        "p_value": p,
        "delta_ci95_low": float(lo),
        "delta_ci95_high": float(hi),
        "n_boot": n_boot,
    }


def two_level_interval(scores: np.ndarray, seed: int = 0) -> dict:
    """Percentile 95% interval of the seed-mean macro-F1, resampling runs and items together."""
    lo, hi = np.percentile(_resample_runs(scores, np.random.default_rng(seed)), [2.5, 97.5])
    return {"boot_ci95_low": float(lo), "boot_ci95_high": float(hi), "n_boot": scores.shape[1]}


def same_model(preds_a, preds_b) -> dict | None:
    """The comparison's result when two methods predicted the same label for every item on every seed: they
    trained the same model (e.g. task arithmetic with λ = 0 chosen on dev starts from θ_base, as `full_ft`
    does), so there is nothing to test and the pair is no member of a Holm family. ``None`` otherwise.

    ``preds_a``/``preds_b``: each method's predictions, per seed (a dict or a list in seed order).
    """
    return {"identical": True, "delta_macro_f1": 0.0} if preds_a == preds_b else None


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down; family-wise error rate), in the input order.

    The i-th smallest p-value is multiplied by ``m - i + 1`` (i from 1), the running maximum is taken
    so that the adjusted values keep the order of the raw ones, and values are capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()


# --- chance baselines --------------------------------------------------------------------------------------------


def _shares(values: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    counts = Counter(values)
    return np.array([counts[c] for c in classes], dtype=float) / max(len(values), 1)


def majority_baseline(gold: Sequence[str], train_labels: Sequence[str]) -> dict:
    """Macro-F1 of answering the most frequent training label on every test item.

    Ties between equally frequent training labels go to the first in sorted order. The F1 of that
    class is ``2π/(1+π)`` for its test share π; every other class that occurs in the test set has F1 0.
    """
    from cmmerge.eval.metrics import classification_metrics

    counts = Counter(train_labels)
    label = min(counts, key=lambda c: (-counts[c], c))
    labels = sorted(set(gold) | {label})
    return {"macro_f1": classification_metrics(gold, [label] * len(gold), labels)["macro_f1"], "predicts": label}


def stratified_baseline(gold: Sequence[str], train_labels: Sequence[str]) -> dict:
    """Expected macro-F1 of answering at random in proportion to the training labels.

    Computed from the expected confusion matrix ``n·π_g·q_p`` (π: test shares, q: training shares),
    so it is exact and seed-free: per class ``F1 = 2πq/(π+q)``, averaged over the classes that occur
    in the test set or are predicted with non-zero probability (scikit-learn's macro average).
    """
    classes = sorted(set(gold) | set(train_labels))
    pi, q = _shares(gold, classes), _shares(train_labels, classes)
    present = (pi + q) > 0
    f1 = np.where(present, 2 * pi * q / np.maximum(pi + q, 1e-300), 0.0)
    return {"macro_f1": float(f1[present].mean()), "train_shares": dict(zip(classes, q.round(6).tolist(), strict=True))}


def label_distribution(preds: Sequence[str], labels: Sequence[str]) -> dict[str, int]:
    """How often each label was predicted (labels never predicted count 0)."""
    counts = Counter(preds)
    return {lab: int(counts[lab]) for lab in [*labels, *sorted(set(counts) - set(labels))]}
