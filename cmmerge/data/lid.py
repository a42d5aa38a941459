"""Word-level language identification for romanised code-mixed text (en / hi or en / es / other).

Method: a hybrid HMM. Emissions come from a logistic-regression classifier over character n-grams of
the lower-cased word (1-5 grams with word-boundary marks, TF-IDF weighted) plus the word itself; the
posterior ``p(tag | word)`` is divided by the tag prior to give a scaled likelihood, as in hybrid
neural/HMM taggers. Transitions are tag bigram probabilities counted on the training sentences, so
a word's neighbours vote: romanised Hindi and English share many short forms ("to", "me", "hai"/"hi")
that only context resolves. Viterbi decodes the best tag sequence per sentence. Tokens without a
letter, @mentions, URLs and emoji are ``other`` by rule: a classifier adds nothing there.

Train it on word-tagged text of the pair (the GLUECoS LID files in ``../shared/data/cpt_unlabeled/raw``),
never on the set it is scored against: :func:`train_lid` removes training sentences that occur in
``exclude`` (normalised text), so scoring on SentiMix stays clean.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.data.cleaning import normalise_key
from cmmerge.data.cmi import OTHER, canonical
from cmmerge.data.loaders import load_tagged
from cmmerge.errors import DataError

_URL_OR_USER = re.compile(r"^(https?\W|www\.|@\w|#?$)", re.IGNORECASE)


def is_rule_other(token: str) -> bool:
    """Tokens tagged ``other`` by rule: no letter at all (punctuation, numbers, emoji), mentions, links."""
    return not any(ch.isalpha() for ch in token) or bool(_URL_OR_USER.match(token))


@dataclass
class WordLID:
    """A fitted word-level language identifier; :meth:`tag` tags one tokenised sentence."""

    tags: list[str]
    vectorizer: object
    classifier: object
    log_prior: list[float]
    log_trans: list[list[float]]  # [previous tag][next tag]
    log_start: list[float]
    context: bool = True
    stats: dict = field(default_factory=dict)
    # scales the transition scores against the emissions: 1 is the plain HMM, below 1 trusts the word more
    transition_weight: float = 1.0

    def tag(self, tokens: Sequence[str]) -> list[str]:
        return self.tag_many([tokens])[0]

    def tag_many(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """Tags for many sentences at once (one vectorizer/classifier call: much faster than per sentence)."""
        words = [w.lower() for s in sentences for w in s if not is_rule_other(w)]
        probs = self.classifier.predict_proba(self.vectorizer.transform(words)) if words else []
        out, k = [], 0
        for sent in sentences:
            rows, idx = [], []
            for i, w in enumerate(sent):
                if not is_rule_other(w):
                    rows.append(probs[k])
                    idx.append(i)
                    k += 1
            tags = [OTHER] * len(sent)
            for i, t in zip(idx, self._decode(rows), strict=True):
                tags[i] = t
            out.append(tags)
        return out

    def _decode(self, rows: list) -> list[str]:
        """Viterbi over the letter tokens (rule-``other`` tokens are transparent to the transitions)."""
        if not rows:
            return []
        n = len(self.tags)
        emit = [[math.log(max(float(p[j]), 1e-12)) - self.log_prior[j] for j in range(n)] for p in rows]
        if not self.context:
            return [self.tags[max(range(n), key=e.__getitem__)] for e in emit]
        w = self.transition_weight
        trans = [[w * x for x in row] for row in self.log_trans]
        score = [w * self.log_start[j] + emit[0][j] for j in range(n)]
        back = []
        for e in emit[1:]:
            best = [max(range(n), key=lambda i, j=j: score[i] + trans[i][j]) for j in range(n)]
            back.append(best)
            score = [score[best[j]] + trans[best[j]][j] + e[j] for j in range(n)]
        path = [max(range(n), key=score.__getitem__)]
        for best in reversed(back):
            path.append(best[path[-1]])
        return [self.tags[j] for j in reversed(path)]


def train_lid(
    sentences: Iterable[dict],
    exclude: set[str] | None = None,
    context: bool = True,
    c: float = 4.0,
    monolingual: dict[str, Iterable[str]] | None = None,
) -> WordLID:
    """Fit on ``{"tokens", "langs"}`` rows (any tag scheme :func:`canonical` knows).

    Sentences whose normalised text is in ``exclude`` are left out (and counted in ``stats``), so the
    identifier never trains on the sentences it will be scored on. ``monolingual`` maps a tag to
    untagged monolingual sentences (e.g. English tweets): their letter words teach the classifier that
    language's spelling, but not the transitions, which would otherwise learn that nobody switches.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    exclude = exclude or set()
    pairs: Counter = Counter()  # (word, tag) -> count: fitting on types with weights is ~5x faster than on tokens
    sequences = []
    stats = Counter()
    for row in sentences:
        if normalise_key(" ".join(row["tokens"])) in exclude:
            stats["sentences_excluded_overlap"] += 1
            continue
        stats["sentences"] += 1
        seq = []
        for token, tag in zip(row["tokens"], canonical(row["langs"]), strict=True):
            # letter tokens tagged "other" in GLUECoS are mostly names and hashtags; SentiMix tags nearly all
            # letter tokens with a language, and CMI counts only language words, so the classifier decides
            # between languages only
            if is_rule_other(token) or tag == OTHER:
                continue
            pairs[token.lower(), tag] += 1
            seq.append(tag)
        sequences.append(seq)
    for tag, texts in (monolingual or {}).items():
        for text in texts:
            if normalise_key(text) in exclude:
                stats["sentences_excluded_overlap"] += 1
                continue
            stats[f"monolingual_{tag}_sentences"] += 1
            for token in text.split():
                if not is_rule_other(token):
                    pairs[token.lower(), tag] += 1
    words = [w for w, _ in pairs]
    labels = [t for _, t in pairs]
    weights = list(pairs.values())
    tags = sorted(set(labels))
    if len(tags) < 2:
        raise DataError(f"language-ID training data has {len(tags)} tag(s) ({', '.join(tags)}); needs two or more")
    stats["words"] = sum(weights)
    stats["word_types"] = len(words)
    vectorizer = FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True, min_df=2)),
            ("word", TfidfVectorizer(analyzer=lambda w: [w])),
        ]
    )
    classifier = LogisticRegression(C=c, max_iter=1000)
    classifier.fit(vectorizer.fit_transform(words), labels, sample_weight=weights)
    order = list(classifier.classes_)
    counts = Counter()
    for (_, tag), n in pairs.items():
        counts[tag] += n
    log_prior = [math.log(counts[t] / stats["words"]) for t in order]
    # add-one smoothed tag bigrams over letter tokens
    trans = {a: Counter() for a in order}
    start = Counter()
    for seq in sequences:
        if seq:
            start[seq[0]] += 1
        for a, b in itertools.pairwise(seq):
            trans[a][b] += 1
    log_trans = [[math.log((trans[a][b] + 1) / (sum(trans[a].values()) + len(order))) for b in order] for a in order]
    log_start = [math.log((start[t] + 1) / (sum(start.values()) + len(order))) for t in order]
    return WordLID(order, vectorizer, classifier, log_prior, log_trans, log_start, context, dict(stats))


def train_lid_from_files(
    paths: Sequence[str | Path],
    exclude: set[str] | None = None,
    context: bool = True,
    monolingual: dict[str, Iterable[str]] | None = None,
) -> WordLID:
    """Fit on GLUECoS-style tagged files (or SentiMix CoNLL) named by ``paths``."""
    rows = [r for p in paths for r in load_tagged(p)]
    return train_lid(rows, exclude=exclude, context=context, monolingual=monolingual)


def word_accuracy(lid: WordLID, rows: Sequence[dict]) -> dict:
    """Accuracy against gold word tags: over all tokens, and over gold language words only (en / hi / es)."""
    pred = lid.tag_many([r["tokens"] for r in rows])
    total = correct = lang_total = lang_correct = 0
    confusion = Counter()
    for row, tags in zip(rows, pred, strict=True):
        for g, p in zip(canonical(row["langs"]), tags, strict=True):
            total += 1
            correct += g == p
            confusion[f"{g}->{p}"] += 1
            if g != OTHER:
                lang_total += 1
                lang_correct += g == p
    return {
        "tokens": total,
        "accuracy": correct / total if total else 0.0,
        "language_words": lang_total,
        "language_word_accuracy": lang_correct / lang_total if lang_total else 0.0,
        "confusion": dict(sorted(confusion.items())),
    }


def tag_texts(lid: WordLID, texts: Sequence[str]) -> list[list[str]]:
    """Word tags for whitespace-tokenised texts: the input to :func:`cmmerge.data.cmi.mixing_stats`."""
    return lid.tag_many([t.split() for t in texts])


# Word-tagged GLUECoS files per pair in <shared data>/cpt_unlabeled/raw (tweets and UD / Miami-Bangor
# transcripts: other corpora than SentiMix, so SentiMix can score the identifier)
GLUECOS_TAGGED = {
    "hinglish": ("LID_EN_HI_Romanized", "POS_EN_HI_UD_Romanized"),
    "spanglish": ("LID_EN_ES", "POS_EN_ES"),
}


def train_shared_lid(
    pair: str,
    shared_data: str | Path,
    exclude: set[str] | None = None,
    context: bool = True,
    english_tweets: bool = True,
) -> WordLID:
    """The identifier for ``pair`` (hinglish | spanglish) from the shared data folder: GLUECoS word tags,
    plus (``english_tweets``) the words of the TweetEval hate train tweets as monolingual English."""
    if pair not in GLUECOS_TAGGED:
        raise DataError(f"no language-ID training data for pair {pair!r}; expected one of {', '.join(GLUECOS_TAGGED)}")
    from cmmerge.data.loaders import DatasetSpec, load_split

    shared_data = Path(shared_data)
    raw = shared_data / "cpt_unlabeled" / "raw"
    files = [raw / f"{task}_{s}.txt" for task in GLUECOS_TAGGED[pair] for s in ("train", "validation", "test")]
    mono = None
    if english_tweets:
        rows = load_split(DatasetSpec(path=str(shared_data / "tweeteval_en_hate")), "train")
        mono = {"en": [r["text"] for r in rows]}
    return train_lid_from_files(files, exclude=exclude, context=context, monolingual=mono)


def tune_transition_weight(
    lid: WordLID, dev_rows: Sequence[dict], grid: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
) -> dict[float, float]:
    """Set ``lid.transition_weight`` to the grid value with the best language-word accuracy on gold-tagged
    ``dev_rows`` (never the scored split); return the accuracy of every value tried."""
    scores = {}
    for w in grid:
        lid.transition_weight = w
        scores[w] = word_accuracy(lid, dev_rows)["language_word_accuracy"]
    lid.transition_weight = max(grid, key=lambda w: (scores[w], -abs(w - 1.0)))
    return scores
