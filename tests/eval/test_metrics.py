"""Metrics and intervals against scikit-learn and hand computations on fixed predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from cmmerge.eval.metrics import classification_metrics
from cmmerge.eval.stats import resampled_seed_scores, seed_interval

LABELS = ["negative", "neutral", "positive"]
GOLD = ["positive", "positive", "negative", "neutral", "neutral", "negative", "positive", "neutral"]
PRED = ["positive", "neutral", "negative", "neutral", "positive", "positive", "positive", "neutral"]


def test_metrics_equal_sklearn():
    m = classification_metrics(GOLD, PRED, LABELS)
    assert m["n"] == 8
    assert m["accuracy"] == pytest.approx(accuracy_score(GOLD, PRED))
    assert m["macro_f1"] == pytest.approx(f1_score(GOLD, PRED, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(GOLD, PRED, average="weighted"))
    p, r, f, s = precision_recall_fscore_support(GOLD, PRED, labels=LABELS, zero_division=0)
    for i, lab in enumerate(LABELS):
        assert m["per_class"][lab] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert m["confusion"]["labels"] == LABELS
    assert m["confusion"]["matrix"] == confusion_matrix(GOLD, PRED, labels=LABELS).tolist()


def test_metrics_by_hand():
    # negative: tp 1, fp 0, fn 1 -> P 1, R 1/2, F1 2/3
    # neutral:  tp 2, fp 1, fn 1 -> P 2/3, R 2/3, F1 2/3
    # positive: tp 2, fp 2, fn 1 -> P 1/2, R 2/3, F1 4/7
    m = classification_metrics(GOLD, PRED, LABELS)
    f1 = {"negative": 2 / 3, "neutral": 2 / 3, "positive": 4 / 7}
    assert {k: v["f1"] for k, v in m["per_class"].items()} == pytest.approx(f1)
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 3 * 2 / 3 + 3 * 4 / 7) / 8)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["confusion"]["matrix"] == [[1, 0, 1], [0, 2, 1], [0, 1, 2]]


def test_seed_interval_by_hand():
    scores = [0.60, 0.64, 0.62]
    out = seed_interval(scores)
    mean, std = 0.62, 0.02  # sample std (ddof 1) of 0.60, 0.62, 0.64
    half = 4.302652729911275 * std / math.sqrt(3)  # t_{0.975, 2}
    assert out["mean"] == pytest.approx(mean)
    assert out["std"] == pytest.approx(std)
    assert out["ci95_low"] == pytest.approx(mean - half)
    assert out["ci95_high"] == pytest.approx(mean + half)
    one = seed_interval([0.5])
    assert one["std"] == 0 and one["ci95_low"] == one["ci95_high"] == 0.5


def test_item_resamples_match_a_hand_loop():
    """The shared item resamples every test uses: indices drawn with replacement, macro-F1 per run and draw."""
    rng = np.random.default_rng(1)
    gold = rng.choice(LABELS, 120).tolist()
    preds = [[g if rng.random() < 0.7 else rng.choice(LABELS) for g in gold] for _ in range(2)]
    scores = resampled_seed_scores(gold, {"m": preds}, LABELS, n_boot=100, seed=5)["m"]
    assert scores.shape == (2, 100)
    # the same resampling written out
    draw = np.random.default_rng(5)
    g, p = np.asarray(gold), np.asarray(preds)
    for b in range(100):
        idx = draw.integers(0, 120, 120)
        present = sorted(set(g[idx]) | set(p[:, idx].ravel()))
        hand = [f1_score(g[idx], q[idx], labels=present, average="macro") for q in p]
        assert scores[:, b] == pytest.approx(hand)


def test_only_configured_transfer_pairs_are_scored(tmp_path):
    """DVC never deletes data/transfer/<pair> of a pair a later config dropped: evaluate must not score it."""
    from cmmerge.errors import DataError
    from cmmerge.eval.evaluate import test_sets

    for pair in ("en_es", "ta_en"):
        (tmp_path / "transfer" / pair).mkdir(parents=True)
        (tmp_path / "transfer" / pair / "test.jsonl").write_text("{}\n")
    assert set(test_sets(tmp_path / "prepared", tmp_path / "transfer", ["ta_en"])) == {"task", "ta_en"}
    assert set(test_sets(tmp_path / "prepared", tmp_path / "transfer", [])) == {"task"}
    with pytest.raises(DataError, match=r"no test set of transfer pair\(s\) hi_ta"):
        test_sets(tmp_path / "prepared", tmp_path / "transfer", ["hi_ta"])
