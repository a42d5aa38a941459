"""The ``corpus`` stage: build the CPT corpus from real and/or synthetic code-mixed text.

The corpus is cleaned like the labelled data and de-leaked against every evaluation text (task
dev/test and every transfer test set), so continued pre-training never sees a test sentence. A
small held-out slice gives CPT a validation loss.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cmmerge.data.cleaning import CleaningParams, clean_rows, keys, remove_overlap
from cmmerge.data.loaders import load_corpus
from cmmerge.data.transfer import transfer_test_files
from cmmerge.errors import DataError
from cmmerge.fsutil import atomic_dir, read_jsonl, write_json

log = logging.getLogger(__name__)


@dataclass
class CorpusParams:
    """``corpus`` section of params.yaml."""

    real: str | None = None  # a text file, or a folder of *.txt files, one sentence per line
    mix: Literal["real", "synthetic", "both"] = "both"
    cleaning: CleaningParams = field(default_factory=CleaningParams)
    max_lines: int | None = None  # subsample after cleaning (null: all)
    valid_fraction: float = 0.05
    seed: int = 13

    def validate(self, where: str) -> None:
        if self.mix in ("real", "both") and not self.real:
            raise DataError(f"{where}.real lists no corpus file, but {where}.mix is '{self.mix}'")
        if not 0.0 <= self.valid_fraction < 0.5:
            raise DataError(f"{where}.valid_fraction must be in [0, 0.5), got {self.valid_fraction}")


def corpus_files(path: str) -> list[Path]:
    """The corpus files named by ``path``: the file itself, or the ``*.txt`` files of a folder."""
    root = Path(path)
    if root.is_file():
        return [root]
    if root.is_dir():
        files = sorted(root.glob("*.txt"))
        if files:
            return files
        raise DataError(f"{path}: corpus folder has no *.txt files")
    raise DataError(f"{path}: corpus file or folder not found")


def evaluation_texts(
    prepared_dir: str | Path, transfer_dir: str | Path | None = None, pairs: list[str] | None = None
) -> set[str]:
    """Normalised texts of every evaluation split the pipeline scores (task dev/test, configured transfer tests)."""
    paths = [Path(prepared_dir) / "task" / "dev.jsonl", Path(prepared_dir) / "task" / "test.jsonl"]
    paths += transfer_test_files(transfer_dir, pairs).values()
    found = set()
    for path in paths:
        if path.is_file():
            found |= keys(read_jsonl(path))
    return found


def build_corpus(
    params: CorpusParams,
    synthetic_path: str | Path | None,
    prepared_dir: str | Path,
    transfer_dir: str | Path | None,
    out_dir: str | Path,
    metrics_path: str | Path,
    pairs: list[str] | None = None,
) -> dict:
    """Write ``train.txt``/``valid.txt``; ``pairs`` names the configured transfer pairs (None: every folder)."""
    counts: Counter = Counter()
    rows: list[dict] = []
    sources: dict[str, int] = {}
    if params.mix in ("real", "both"):
        for path in corpus_files(params.real):
            lines = load_corpus(path)
            sources[str(path)] = len(lines)
            rows += [{"text": t} for t in lines]
    if params.mix in ("synthetic", "both"):
        if synthetic_path is None or not Path(synthetic_path).is_file():
            raise DataError(f"corpus.mix is '{params.mix}' but the synthetic corpus {synthetic_path} does not exist")
        lines = load_corpus(synthetic_path)
        sources[str(synthetic_path)] = len(lines)
        rows += [{"text": t} for t in lines]
    counts["rows_read"] = len(rows)
    rows = clean_rows(rows, params.cleaning, counts)
    rows = remove_overlap(rows, evaluation_texts(prepared_dir, transfer_dir, pairs), counts, "dropped_leak_in_eval")
    rng = random.Random(params.seed)
    rng.shuffle(rows)
    if params.max_lines is not None and len(rows) > params.max_lines:
        counts["dropped_subsample"] += len(rows) - params.max_lines
        rows = rows[: params.max_lines]
    n_valid = int(len(rows) * params.valid_fraction)
    if len(rows) - n_valid < 1:
        raise DataError("the CPT corpus is empty after cleaning and de-leaking; give more text in corpus.real")
    valid, train = rows[:n_valid], rows[n_valid:]
    with atomic_dir(out_dir) as tmp:
        (tmp / "train.txt").write_text("".join(r["text"] + "\n" for r in train), encoding="utf-8")
        (tmp / "valid.txt").write_text("".join(r["text"] + "\n" for r in valid), encoding="utf-8")
    report = {
        "mix": params.mix,
        "sources": sources,
        **dict(sorted(counts.items())),
        "train_lines": len(train),
        "valid_lines": len(valid),
        "train_words": sum(len(r["text"].split()) for r in train),
    }
    write_json(metrics_path, report)
    log.info("CPT corpus: %d train / %d valid lines (%s)", len(train), len(valid), params.mix)
    return report
