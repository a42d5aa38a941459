"""Compact per-item predictions: one character per item, the index of its label (records and the learning curve).

3,000 test items × 3 seeds of one method take 9 kB this way, against about ten times that as JSON lists of label
names, which keeps every record file far below the 5 MB limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from cmmerge.errors import DataError

INDEX_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode(values: Sequence[str], labels: Sequence[str], where: str) -> str:
    """``values`` (labels) as one string of label-index characters; ``where`` names the data in errors."""
    if len(labels) > len(INDEX_CHARS):
        raise DataError(f"{where}: {len(labels)} labels; compact predictions hold at most {len(INDEX_CHARS)}")
    index = {lab: INDEX_CHARS[i] for i, lab in enumerate(labels)}
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise DataError(f"{where}: labels {unknown} are not among {list(labels)}")
    return "".join(index[v] for v in values)


def decode(codes: str, labels: Sequence[str]) -> list[str]:
    """The labels of a string written by :func:`encode` with the same ``labels``."""
    label_of = dict(zip(INDEX_CHARS, labels, strict=False))  # labels use the first len(labels) characters
    return [label_of[c] for c in codes]
