"""Text cleaning and de-duplication, every dropped or changed row counted by reason.

Rows are dictionaries with at least ``text``; functions return new lists and add to a
``collections.Counter`` so that ``metrics/data.json`` can say exactly what happened to the data.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# plain links, and SentiMix-style pre-tokenised ones ("https // t . co / AbC")
_URL = re.compile(r"https?://\S+|https?\s*:?\s*/\s*/\s*\S+(?:\s+[./]\s+\S+)*|www\.\S+", re.IGNORECASE)
_USER = re.compile(r"@\s?[A-Za-z0-9_]+")
_SPACE = re.compile(r"\s+")
# UTF-8 read as Windows-1252/1250 that ftfy could not undo: "â€", "Ã©", "ðŸ", or a Polish/Czech "đ" pair
_MOJIBAKE_LEFT = re.compile(r"â€|Ã[\u0080-\u00bf]|ðŸ|đđ|đ[\u0080-\u009f]")


@functools.cache
def _ftfy_config():
    import ftfy

    return ftfy.TextFixerConfig(
        uncurl_quotes=False, fix_latin_ligatures=False, fix_character_width=False, normalization="NFC"
    )


@dataclass
class CleaningParams:
    """Which cleaning steps to apply (all counted in ``metrics/data.json``)."""

    fix_mojibake: bool = True  # ftfy: "Ã©" -> "é", "ðŸ˜‚" -> "😂"
    urls: str | None = "http"  # replace links with this token; null keeps them
    users: str | None = "@user"  # replace @mentions with this token; null keeps them
    lowercase: bool = False
    min_chars: int = 1
    drop_duplicates: bool = True


def normalise_key(text: str) -> str:
    """The identity used for duplicates and leakage: case-folded, NFKC, whitespace-collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def clean_text(text: str, params: CleaningParams, counts: Counter | None = None) -> str:
    """Apply the configured normalisations to one text, counting what changed."""
    counts = counts if counts is not None else Counter()
    out = text
    if params.fix_mojibake:
        import ftfy

        # only encoding repairs: ftfy's other default fixes (curly quotes -> straight, ligatures,
        # full-width characters) would change clean text and be miscounted as mojibake
        fixed = ftfy.fix_text(out, _ftfy_config())
        if fixed != out:
            counts["fixed_mojibake"] += 1
        out = fixed
        if _MOJIBAKE_LEFT.search(out):
            # bytes already lost upstream (e.g. "đđ" for an emoji): cannot be repaired, only reported
            counts["unrepaired_mojibake"] += 1
    if params.urls is not None:
        replaced = _URL.sub(params.urls, out)
        if replaced != out:
            counts["normalised_url"] += 1
        out = replaced
    if params.users is not None:
        replaced = _USER.sub(params.users, out)
        if replaced != out:
            counts["normalised_user"] += 1
        out = replaced
    if params.lowercase:
        out = out.lower()
    collapsed = _SPACE.sub(" ", out).strip()
    if collapsed != out:
        counts["normalised_whitespace"] += 1
    return collapsed


def clean_rows(rows: Iterable[dict], params: CleaningParams, counts: Counter, keep_all: bool = False) -> list[dict]:
    """Clean texts; drop rows that end up (nearly) empty and exact duplicates, counting each reason.

    ``keep_all`` (official test splits): every row is kept, so scores stay comparable with published ones;
    (nearly) empty texts and duplicates are only counted, as ``empty_kept`` and ``duplicate_kept``.
    """
    out, seen = [], set()
    for row in rows:
        text = clean_text(row["text"], params, counts)
        key = normalise_key(text)
        if len(text) < params.min_chars:
            if not keep_all:
                counts["dropped_empty"] += 1
                continue
            counts["empty_kept"] += 1
        elif key in seen:
            if keep_all:
                counts["duplicate_kept"] += 1
            elif params.drop_duplicates:
                counts["dropped_duplicate"] += 1
                continue
        seen.add(key)
        out.append({**row, "text": text})
    return out


def remove_overlap(rows: Iterable[dict], against: set[str], counts: Counter, reason: str) -> list[dict]:
    """Drop rows whose normalised text is in ``against`` (leakage between splits), counted as ``reason``."""
    kept = []
    for row in rows:
        if normalise_key(row["text"]) in against:
            counts[reason] += 1
        else:
            kept.append(row)
    return kept


def keys(rows: Iterable[dict]) -> set[str]:
    return {normalise_key(r["text"]) for r in rows}
