"""Compare synthetic code-mixed text with real code-mixed text.

Measured the same way on both sides: word tags from the word-level language identifier
(:mod:`cmmerge.data.lid`) for every text, real or synthetic, so that neither side is favoured by its own
tags; then the CMI distribution, switch points and language shares (:mod:`cmmerge.data.cmi`), the overlap
of the vocabularies with real text (type and token coverage), and, for a generator with a reference, chrF
(sacrebleu) against human code-mixed references it never saw.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from cmmerge.data.cmi import cmi_histogram, mixing_stats
from cmmerge.data.lid import WordLID, tag_texts

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased letter words (no punctuation, numbers, mentions split off): the vocabulary unit."""
    return [w.lower() for w in _WORD.findall(text)]


def vocabulary_overlap(texts: Sequence[str], reference: Sequence[str]) -> dict:
    """How much of ``texts``' vocabulary real ``reference`` text uses: type overlap, token coverage, Jaccard."""
    mine = Counter(w for t in texts for w in words(t))
    ref = Counter(w for t in reference for w in words(t))
    shared = set(mine) & set(ref)
    tokens = sum(mine.values())
    return {
        "types": len(mine),
        "reference_types": len(ref),
        "type_overlap": len(shared) / len(mine) if mine else 0.0,
        "token_coverage": sum(mine[w] for w in shared) / tokens if tokens else 0.0,
        "jaccard": len(shared) / len(set(mine) | set(ref)) if mine or ref else 0.0,
    }


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2), lower-cased: case is not code-mixing."""
    from sacrebleu.metrics import CHRF

    return CHRF(lowercase=True).corpus_score(list(hypotheses), [list(references)]).score


def describe(name: str, texts: Sequence[str], lid: WordLID, reference: Sequence[str]) -> tuple[dict, dict]:
    """Statistics of one text collection, and its CMI histogram (bin -> share of utterances)."""
    tags = tag_texts(lid, texts)
    stats = {"name": name, **mixing_stats(tags), "vocabulary": vocabulary_overlap(texts, reference)}
    return stats, cmi_histogram(tags)


def plot_rows(histograms: dict[str, dict]) -> list[dict]:
    """DVC plot data (a list of records): one row per (corpus, CMI bin)."""
    return [
        {"corpus": name, "cmi_bin": lo, "share": share}
        for name, hist in histograms.items()
        for lo, share in hist.items()
    ]
