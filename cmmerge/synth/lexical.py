"""Synthetic code-mixing by lexical substitution with a bilingual lexicon.

English (matrix-language) text is segmented into lexicon units by greedy longest match, so a
multi-word unit ("a waste of time" -> "time waste") is replaced as a whole and never word by word.
Units are then switched in random order until the utterance's Code-Mixing Index reaches the target
(``target_cmi``, 0-50 for two languages): the mixing is controlled per sentence, not only on
average. Every output word carries its language tag, so the achieved CMI is measured exactly.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.data.cmi import cmi
from cmmerge.errors import DataError

_TOKEN = re.compile(r"[#@]?[\w']+|[^\w\s]", re.UNICODE)
EN, CM, OTHER = "en", "cm", "other"


@dataclass
class Lexicon:
    """English unit (tuple of lower-cased words) -> code-mixed replacement (list of words)."""

    entries: dict[tuple[str, ...], list[str]]
    # per-word tags of a replacement (e.g. an aligned phrase keeps English words); missing: all code-mixed
    tags: dict[tuple[str, ...], list[str]] = field(default_factory=dict)

    @property
    def max_len(self) -> int:
        return max((len(k) for k in self.entries), default=1)

    @classmethod
    def from_tsv(cls, path: str | Path, source_col: str = "en", target_col: str = "hi") -> Lexicon:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: lexicon file not found")
        entries: dict[tuple[str, ...], list[str]] = {}
        try:
            with open(path, encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh, delimiter="\t")
                if not reader.fieldnames or source_col not in reader.fieldnames or target_col not in reader.fieldnames:
                    raise DataError(
                        f"{path}: lexicon needs a header with columns '{source_col}' and '{target_col}' "
                        f"(found {', '.join(reader.fieldnames or []) or 'no header'})"
                    )
                for lineno, rec in enumerate(reader, 2):
                    src, tgt = (rec.get(source_col) or "").strip(), (rec.get(target_col) or "").strip()
                    if not src or not tgt:
                        raise DataError(f"{path}:{lineno}: empty '{source_col}' or '{target_col}' entry")
                    entries[tuple(tokenize(src.lower()))] = tgt.split()
        except UnicodeDecodeError:
            raise DataError(f"{path}: not valid UTF-8") from None
        if not entries:
            raise DataError(f"{path}: lexicon has no entries")
        return cls(entries)


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def segment(words: list[str], lexicon: Lexicon) -> list[tuple[list[str], list[str] | None, list[str] | None]]:
    """Greedy longest-match segmentation into (source words, replacement or None, replacement tags) units."""
    units, i, lower = [], 0, [w.lower() for w in words]
    while i < len(words):
        for n in range(min(lexicon.max_len, len(words) - i), 0, -1):
            key = tuple(lower[i : i + n])
            repl = lexicon.entries.get(key)
            if repl is not None:
                units.append((words[i : i + n], repl, lexicon.tags.get(key, [CM] * len(repl))))
                i += n
                break
        else:
            units.append(([words[i]], None, None))
            i += 1
    return units


def _tag(word: str) -> str:
    return EN if any(ch.isalpha() for ch in word) else OTHER


def code_mix(text: str, lexicon: Lexicon, target_cmi: float, rng: random.Random) -> tuple[str, list[str]]:
    """Switch lexicon units of ``text`` until its CMI reaches ``target_cmi``; return text and word tags."""
    units = segment(tokenize(text), lexicon)
    switched = [False] * len(units)
    order = [i for i, (_, repl, _) in enumerate(units) if repl is not None]
    rng.shuffle(order)

    def render() -> tuple[list[str], list[str]]:
        words, tags = [], []
        for (src, repl, repl_tags), on in zip(units, switched, strict=True):
            if on:
                words += repl
                tags += repl_tags
            else:
                words += src
                tags += [_tag(w) for w in src]
        return words, tags

    words, tags = render()
    current = cmi(tags, (EN, CM))
    for i in order:
        if current >= target_cmi:
            break
        switched[i] = True
        new_words, new_tags = render()
        new_cmi = cmi(new_tags, (EN, CM))
        # keep a switch only if it brings the utterance closer to the target, and never let the
        # code-mixed words outnumber the English ones: that would change the matrix language
        if abs(new_cmi - target_cmi) < abs(current - target_cmi) and new_tags.count(CM) <= new_tags.count(EN):
            words, tags, current = new_words, new_tags, new_cmi
        else:
            switched[i] = False
    return " ".join(words), tags


def synthesize(texts: list[str], lexicon: Lexicon, target_cmi: float, seed: int) -> list[dict]:
    """Code-mix every text; rows carry ``text``, ``langs`` and the achieved ``cmi``."""
    rng = random.Random(seed)
    out = []
    for text in texts:
        mixed, tags = code_mix(text, lexicon, target_cmi, rng)
        out.append({"source": text, "text": mixed, "langs": tags, "cmi": cmi(tags, (EN, CM))})
    return out
