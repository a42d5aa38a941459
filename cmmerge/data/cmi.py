"""Code-mixing statistics from word-level language tags.

Code-Mixing Index (Das & Gambäck 2014; Gambäck & Das 2016), per utterance::

    CMI = 100 * (1 - max_i(w_i) / (n - u))   if n > u, else 0

where ``w_i`` counts the words tagged with language ``i``, ``n`` is the number of tokens and ``u``
the number of language-independent tokens (punctuation, emoji, names, ...: tags outside
``languages``). Switch-point fraction: switches between adjacent language-tagged words divided by
the number of adjacent language-tagged pairs.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence


def cmi(langs: Sequence[str], languages: Sequence[str]) -> float:
    """Code-Mixing Index of one utterance given its word-level tags; 0 for monolingual or empty text."""
    counts = Counter(t for t in langs if t in languages)
    tagged = sum(counts.values())
    if tagged == 0:
        return 0.0
    return 100.0 * (1.0 - max(counts.values()) / tagged)


def switch_fraction(langs: Sequence[str], languages: Sequence[str]) -> float:
    """Fraction of adjacent language-tagged word pairs whose languages differ (universal tokens skipped)."""
    seq = [t for t in langs if t in languages]
    if len(seq) < 2:
        return 0.0
    return sum(a != b for a, b in itertools.pairwise(seq)) / (len(seq) - 1)


def language_shares(all_langs: Sequence[Sequence[str]]) -> dict[str, float]:
    """Share of each tag over a whole corpus of tagged utterances."""
    counts = Counter(t for langs in all_langs for t in langs)
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items())}


# Word-tag schemes of the shared data sets mapped to one vocabulary: SentiMix Hinglish (Hin/Eng/O/EMT),
# SentiMix Spanglish and CALCS (lang1 = English, lang2 = Spanish, other/ne/...), GLUECoS LID (EN/HI/ES/OTHER),
# and the synthetic generators' own tags. Everything else (punctuation, emoji, names, mixed words) is "other".
CANONICAL_TAGS = {
    "en": "en",
    "eng": "en",
    "lang1": "en",
    "hi": "hi",
    "hin": "hi",
    "cm": "hi",  # the Hinglish generators tag inserted words "cm"
    "es": "es",
    "spa": "es",
    "lang2": "es",
}
OTHER = "other"


def canonical(langs: Sequence[str]) -> list[str]:
    """Tags in the common vocabulary ``en`` / ``hi`` / ``es`` / ``other``."""
    return [CANONICAL_TAGS.get(t.strip().lower(), OTHER) for t in langs]


def mixing_stats(all_langs: Sequence[Sequence[str]], languages: Sequence[str] = ("en", "hi")) -> dict:
    """Corpus-level code-mixing statistics from canonical word tags.

    ``cmi_mean`` averages the utterance CMI over all utterances, ``cmi_mixed_mean`` over the mixed ones only
    (Das & Gambäck 2014 report both); ``switch_fraction_mean`` is the share of adjacent language-word pairs
    that switch, ``switches_per_word`` the switch points P divided by language words N over the corpus
    (the P/N term of Gambäck & Das 2016); ``shares`` the tag shares over all tokens.
    """
    if not all_langs:
        return {"utterances": 0}
    cmis = [cmi(t, languages) for t in all_langs]
    mixed = [c for c in cmis if c > 0]
    seqs = [[t for t in langs if t in languages] for langs in all_langs]
    switches = sum(sum(a != b for a, b in itertools.pairwise(s)) for s in seqs)
    words = sum(len(s) for s in seqs)
    return {
        "utterances": len(cmis),
        "cmi_mean": sum(cmis) / len(cmis),
        "cmi_mixed_mean": sum(mixed) / len(mixed) if mixed else 0.0,
        "mixed_fraction": len(mixed) / len(cmis),
        "switch_fraction_mean": sum(switch_fraction(t, languages) for t in all_langs) / len(cmis),
        "switches_per_utterance": switches / len(cmis),
        "switches_per_word": switches / words if words else 0.0,
        "shares": language_shares(all_langs),
    }


def cmi_histogram(all_langs: Sequence[Sequence[str]], languages: Sequence[str] = ("en", "hi"), width: int = 5) -> dict:
    """Share of utterances per CMI bin ``[lo, lo + width)`` (bin label ``lo``); the last bin holds CMI 50."""
    top = 50 - width  # two languages: CMI never exceeds 50
    counts = Counter(min(int(cmi(t, languages) // width) * width, top) for t in all_langs)
    n = max(len(all_langs), 1)
    return {lo: counts.get(lo, 0) / n for lo in range(0, top + 1, width)}
