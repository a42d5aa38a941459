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
