"""Statistics over seeds and test items: intervals, significance tests, multiple comparisons, chance baselines.

Two sources of variance matter in these comparisons: the training seed and the sample of test
items. ``seed_interval`` summarises the first (t-interval over per-seed scores). The report's test is
:func:`seed_item_test`, a Welch t-test over training seeds whose standard error also holds the variance over
resamples of the test items (shared by the compared systems). ``paired_bootstrap`` and
``approximate_randomization`` resample items only, treating the trained models as fixed; they answer "is this
set of models better on this population of items", not "is this method better", and are kept for that
narrower question.
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
    items; :func:`seed_item_test` takes the item variance from them. One bincount per run and block of
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


def _welch_df(components: Sequence[tuple[float, float]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of variance estimates, each ``(variance, df)``."""
    total = sum(v for v, _ in components)
    denom = sum(v * v / df for v, df in components if df > 0 and v > 0)
    return math.inf if denom == 0 else total * total / denom


def _seed_term(f1_runs: Sequence[float]) -> tuple[float, float]:
    """The seed part of the variance of a seed mean, ``s²/n``, and its degrees of freedom (0 for one run)."""
    x = np.asarray(f1_runs, dtype=float)
    return (float(x.var(ddof=1)) / len(x), len(x) - 1) if len(x) > 1 else (0.0, 0)


def _item_term(resampled: np.ndarray) -> tuple[float, float]:
    """The item part: the variance of a seed-averaged statistic over the item resamples (unbounded df)."""
    return (float(resampled.var(ddof=1)) if len(resampled) > 1 else 0.0, math.inf)


def _t_interval(components: Sequence[tuple[float, float]], confidence: float) -> tuple[float, float, float]:
    """Standard error (root of the summed variance parts), Welch–Satterthwaite df and the t-interval's half width
    (0 when nothing varies) of an estimate whose variance is the sum of ``components``, each ``(variance, df)``."""
    from scipy import stats

    se = math.sqrt(sum(v for v, _ in components))
    df = _welch_df(components)
    return se, df, float(stats.t.ppf(0.5 + confidence / 2, df) * se) if se > 0 else 0.0


def seed_item_test(
    scores_a: np.ndarray, scores_b: np.ndarray, f1_a: Sequence[float], f1_b: Sequence[float], confidence: float = 0.95
) -> dict:
    """Welch t-test of seed-mean macro-F1, system A vs system B, with the test-item variance in its standard error.

    Two sources of variance make the observed difference Δ = mean(f1_a) − mean(f1_b) uncertain:
    which training seeds ran, and which test items were drawn. The seed part is each method's sample variance
    over its runs, ``s²/n`` (the runs are scored on the same items, so this is the variance a new set of seeds
    would add on these items); the item part is the variance of the seed-averaged difference over
    ``scores_a``/``scores_b``, the :func:`resampled_seed_scores` of both systems on the same item resamples
    (paired over items, every run kept). The standard error is the root of their sum; the degrees of freedom
    are Welch–Satterthwaite's, so three seeds give a t with about two to four degrees of freedom, not a
    normal. A percentile bootstrap that resampled the three seeds instead (this project's earlier test) rejects
    a true null far more often than α when seed noise outweighs item noise: a bootstrap over three values has
    ten distinct means and shrinks their variance by 2/3 (``python benchmarks/calibration.py`` simulates both).
    A method better on one lucky seed only has a large ``s²`` and is not significant. Where item noise
    dominates the test is conservative: runs that err on different items differ from each other, and the same
    disagreement also widens the item part.

    A method with one run has no seed variance to estimate: its seed part is 0, which tests the items only
    for that run (``seed_variance_known`` False; tables say so). ``f1_a``/``f1_b``: each run's macro-F1 on
    all test items. Returns the difference, the two-sided p-value, the ``confidence`` interval, the
    standard error's parts and the degrees of freedom.
    """
    from scipy import stats

    if scores_a.shape[1] != scores_b.shape[1]:
        raise ValueError("both systems must be scored on the same item resamples")
    if len(f1_a) != len(scores_a) or len(f1_b) != len(scores_b):
        raise ValueError("one macro-F1 per run of each system, in the order of its resampled scores")
    delta = float(np.mean(f1_a) - np.mean(f1_b))
    seed_a, seed_b = _seed_term(f1_a), _seed_term(f1_b)
    item = _item_term(scores_a.mean(axis=0) - scores_b.mean(axis=0))
    se, df, half = _t_interval([seed_a, seed_b, item], confidence)
    # se 0: nothing varies (identical systems, or a difference without any spread)
    p = float(2 * stats.t.sf(abs(delta) / se, df)) if se > 0 else (1.0 if delta == 0 else 0.0)
    return {
        "delta_macro_f1": delta,
        "p_value": p,
        "delta_ci95_low": delta - half,
        "delta_ci95_high": delta + half,
        "se_seeds": math.sqrt(seed_a[0] + seed_b[0]),
        "se_items": math.sqrt(item[0]),
        "df": df,
        "seed_variance_known": min(len(f1_a), len(f1_b)) > 1,
        "n_boot": int(scores_a.shape[1]),
    }


def seed_item_interval(scores: np.ndarray, f1_runs: Sequence[float], confidence: float = 0.95) -> dict:
    """Student-t interval of a system's seed-mean macro-F1 whose standard error adds the item variance (the
    variance of the seed mean over :func:`resampled_seed_scores` resamples) to the seed variance ``s²/n``;
    Welch–Satterthwaite degrees of freedom, as in :func:`seed_item_test`; cut to [0, 1], where macro-F1 lies."""
    mean = float(np.mean(f1_runs))
    _se, _df, half = _t_interval([_seed_term(f1_runs), _item_term(scores.mean(axis=0))], confidence)
    # macro-F1 lies in [0, 1]: with few seeds and a wide spread the symmetric t-interval can cross a bound
    low, high = max(0.0, mean - half), min(1.0, mean + half)
    return {"ci95_seeds_items_low": low, "ci95_seeds_items_high": high, "n_boot": int(scores.shape[1])}


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
