"""The paired bootstrap: significant for a clearly better fake method, not for identical predictions."""

from __future__ import annotations

import numpy as np
import pytest

from cmmerge.eval.stats import approximate_randomization, paired_bootstrap

LABELS = ["negative", "neutral", "positive"]


def _fake(gold: list[str], accuracy: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [g if rng.random() < accuracy else str(rng.choice([x for x in LABELS if x != g])) for g in gold]


GOLD = np.random.default_rng(0).choice(LABELS, 300).tolist()


def test_clearly_better_method_is_significant():
    better = [_fake(GOLD, 0.85, s) for s in (1, 2, 3)]
    worse = [_fake(GOLD, 0.55, s) for s in (4, 5, 6)]
    out = paired_bootstrap(GOLD, better, worse, LABELS, n_boot=500, seed=0)
    assert out["delta_macro_f1"] > 0.2
    assert out["p_value"] < 0.05


def test_identical_predictions_are_not_significant():
    preds = [_fake(GOLD, 0.7, s) for s in (1, 2)]
    out = paired_bootstrap(GOLD, preds, [list(p) for p in preds], LABELS, n_boot=300, seed=0)
    assert out["delta_macro_f1"] == 0
    assert out["p_value"] > 0.5


def test_slightly_different_equal_quality_is_not_significant():
    a = [_fake(GOLD, 0.7, 1)]
    b = [list(a[0])]
    for i in range(0, 300, 60):  # five items changed, some for better and some for worse
        b[0][i] = GOLD[i] if a[0][i] != GOLD[i] else next(x for x in LABELS if x != GOLD[i])
    out = paired_bootstrap(GOLD, a, b, LABELS, n_boot=500, seed=0)
    assert out["p_value"] > 0.05


def test_approximate_randomization():
    better = [_fake(GOLD, 0.85, s) for s in (1, 2)]
    worse = [_fake(GOLD, 0.55, s) for s in (4, 5)]
    out = approximate_randomization(GOLD, better, worse, LABELS, n_trials=300, seed=0)
    assert out["delta_macro_f1"] > 0.2 and out["p_value"] < 0.05
    same = approximate_randomization(GOLD, better, [list(p) for p in better], LABELS, n_trials=300, seed=0)
    assert same["delta_macro_f1"] == 0 and same["p_value"] > 0.5


def test_fast_scoring_equals_sklearn_on_resamples():
    from sklearn.metrics import f1_score

    from cmmerge.eval.stats import _encode, _seed_mean_f1

    preds = [_fake(GOLD, 0.6, 9)]
    codes, k = _encode(GOLD, preds, LABELS)
    idx = np.random.default_rng(3).integers(0, 300, (20, 300))
    idx[0, :] = 0  # a resample of one item: one class present
    fast = _seed_mean_f1(codes, k, idx)
    g, p = np.asarray(GOLD), np.asarray(preds[0])
    for row, value in zip(idx, fast, strict=True):
        present = sorted(set(g[row]) | set(p[row]))
        assert value == pytest.approx(f1_score(g[row], p[row], labels=present, average="macro", zero_division=0))
