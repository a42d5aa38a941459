"""Code-mixing statistics and the word-level language identifier."""

from __future__ import annotations

import pytest

from cmmerge.data.cmi import canonical, cmi, cmi_histogram, mixing_stats, switch_fraction
from cmmerge.data.lid import is_rule_other, train_lid, word_accuracy
from cmmerge.errors import DataError


def test_cmi_matches_das_gamback():
    # 3 Hindi + 1 English language words, 1 universal token: CMI = 100 * (1 - 3/4) = 25
    assert cmi(["hi", "hi", "en", "other", "hi"], ("en", "hi")) == pytest.approx(25.0)
    assert cmi(["en", "en", "other"], ("en", "hi")) == 0.0
    assert cmi(["other"], ("en", "hi")) == 0.0
    assert switch_fraction(["hi", "other", "en", "en", "hi"], ("en", "hi")) == pytest.approx(2 / 3)


def test_canonical_tag_schemes():
    assert canonical(["Hin", "Eng", "O", "EMT"]) == ["hi", "en", "other", "other"]
    assert canonical(["lang1", "lang2", "ne", "ambiguous"]) == ["en", "es", "other", "other"]
    assert canonical(["HI", "EN", "OTHER", "cm"]) == ["hi", "en", "other", "hi"]


def test_mixing_stats_and_histogram():
    tags = [["hi", "en", "hi", "hi"], ["en", "en"], ["en", "hi"]]
    stats = mixing_stats(tags)
    assert stats["utterances"] == 3
    assert stats["mixed_fraction"] == pytest.approx(2 / 3)
    assert stats["cmi_mean"] == pytest.approx((25 + 0 + 50) / 3)
    assert stats["cmi_mixed_mean"] == pytest.approx(37.5)
    assert stats["switches_per_utterance"] == pytest.approx(1.0)
    hist = cmi_histogram(tags)
    assert sum(hist.values()) == pytest.approx(1.0) and hist[45] == pytest.approx(1 / 3)


def _toy_training() -> list[dict]:
    hi = ["main", "ghar", "ja", "raha", "hoon", "yaar", "kya", "baat", "hai", "bahut", "accha", "laga", "mujhe"]
    en = ["i", "am", "going", "home", "now", "this", "is", "really", "good", "and", "i", "like", "it", "a", "lot"]
    rows = []
    for i in range(30):
        h, e = hi[i % len(hi) :] + hi[: i % len(hi)], en[i % len(en) :] + en[: i % len(en)]
        rows.append({"tokens": h[:5] + e[:4] + ["!"], "langs": ["HI"] * 5 + ["EN"] * 4 + ["OTHER"]})
    return rows


def test_rule_other_tokens():
    assert all(is_rule_other(t) for t in ["!!", "😂", "@user", "https://t.co/x", "123", "#"])
    assert not any(is_rule_other(t) for t in ["yaar", "movie", "#bollywood"])


@pytest.mark.parametrize("context", [True, False])
def test_lid_learns_and_excludes(context):
    rows = _toy_training()
    lid = train_lid(rows, context=context)
    assert lid.tag(["bahut", "accha", "movie", "really", "good", "😂"])[-1] == "other"
    score = word_accuracy(
        lid,
        [
            {
                "tokens": ["kya", "baat", "hai", "this", "is", "good", "!"],
                "langs": ["Hin", "Hin", "Hin", "Eng", "Eng", "Eng", "O"],
            }
        ],
    )
    assert score["accuracy"] >= 6 / 7
    excluded = train_lid(rows, exclude={" ".join(rows[0]["tokens"])})
    assert excluded.stats["sentences_excluded_overlap"] == 1


def test_lid_needs_two_languages():
    with pytest.raises(DataError, match="needs two or more"):
        train_lid([{"tokens": ["hello", "world"], "langs": ["EN", "EN"]}])


def test_transition_weight_tuned_on_dev():
    from cmmerge.data.lid import tune_transition_weight

    rows = _toy_training()
    lid = train_lid(rows)
    dev = [{"tokens": ["kya", "baat", "hai", "this", "is", "good"], "langs": ["Hin"] * 3 + ["Eng"] * 3}]
    scores = tune_transition_weight(lid, dev, grid=(0.0, 1.0))
    assert set(scores) == {0.0, 1.0} and lid.transition_weight in scores
    assert scores[lid.transition_weight] == max(scores.values())
