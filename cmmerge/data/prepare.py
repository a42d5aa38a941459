"""The ``prepare`` and ``prepare_transfer`` stages: load, clean, de-leak and write the labelled data.

``prepare_transfer@<pair>`` runs first and writes ``data/transfer/<pair>/test.jsonl``: another language
pair's official test set, labels mapped, texts cleaned, every row kept. ``prepare`` then writes (under
``data/prepared``) ``task/{train,dev,test}.jsonl``, ``english/{train,dev}.jsonl`` and
``joint/{train,dev}.jsonl`` (if English data is configured), and ``labels.json`` (the label set, in the
order of the classifier's ids).

Test sets are left whole: no test row is de-duplicated, filtered or de-leaked (only an explicit
``label_map: {X: null}`` drops rows), so scores stay comparable with published ones. Leakage is removed one
way only: training and dev data lose every text that appears in any test set (the task's and every
transfer pair's). Every row dropped or changed is counted by reason; test-side duplicates and the texts two
test sets share are counted and reported in ``metrics/data.json``.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.data.cleaning import CleaningParams, clean_rows, keys, normalise_key, remove_overlap
from cmmerge.data.loaders import DatasetSpec, load_split
from cmmerge.data.transfer import transfer_test_files
from cmmerge.errors import DataError
from cmmerge.fsutil import atomic_dir, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)


@dataclass
class PrepareParams:
    """``prepare`` section of params.yaml."""

    task: DatasetSpec
    english: DatasetSpec | None = None
    cleaning: CleaningParams = field(default_factory=CleaningParams)
    max_train: int | None = None  # stratified subsample of the task train split (null: all)
    max_english: int | None = None  # likewise for the English train split
    max_dev: int | None = None  # likewise for the task dev split (evaluated every epoch); test is never subsampled
    seed: int = 13


def _map_labels(rows: list[dict], spec: DatasetSpec, counts: Counter) -> list[dict]:
    if not spec.label_map:
        return rows
    out = []
    for row in rows:
        if row["label"] in spec.label_map:
            new = spec.label_map[row["label"]]
            if new is None:
                counts["dropped_label_unmapped"] += 1
                continue
            row = {**row, "label": new}
        out.append(row)
    return out


def _subsample(rows: list[dict], n: int | None, seed: int, counts: Counter) -> list[dict]:
    """Stratified by label, so class shares survive; the order of rows is kept."""
    if n is None or len(rows) <= n:
        return rows
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_label[row["label"]].append(i)
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(by_label):
        idx = by_label[label]
        take = max(1, round(n * len(idx) / len(rows)))
        keep += rng.sample(idx, min(take, len(idx)))
    keep = sorted(keep)[:n]
    counts["dropped_subsample"] += len(rows) - len(keep)
    return [rows[i] for i in keep]


def _load_clean(
    spec: DatasetSpec, split: str, cleaning: CleaningParams, counts: Counter, required=True, keep_all=False
):
    """Load, map labels and clean one split; ``keep_all`` (test splits) keeps every row a label_map keeps."""
    rows = load_split(spec, split, required=required, counts=counts)
    if rows is None:
        return None
    counts["rows_read"] += len(rows)
    if keep_all:  # reported even when zero: a test set's rows are all kept, these say how many are odd
        counts["duplicate_kept"] += 0
        counts["empty_kept"] += 0
    rows = _map_labels(rows, spec, counts)
    return clean_rows(rows, cleaning, counts, keep_all=keep_all)


def _check_labels(rows: list[dict], labels: list[str], where: str) -> None:
    unseen = sorted({r["label"] for r in rows} - set(labels))
    if unseen:
        raise DataError(
            f"{where}: label(s) {', '.join(map(repr, unseen))} never occur in the task's train split "
            f"(train labels: {', '.join(labels)}); map or drop them with label_map"
        )


def _duplicates(rows: list[dict], min_chars: int) -> int:
    """Rows whose text (``normalise_key``) an earlier row already has; (nearly) empty texts are not counted."""
    seen: set[str] = set()
    n = 0
    for row in rows:
        if len(row["text"]) < min_chars:
            continue
        key = normalise_key(row["text"])
        n += key in seen
        seen.add(key)
    return n


def _test_overlap(test_sets: dict[str, list[dict]]) -> dict[str, dict[str, int]]:
    """For each pair of test sets, the number of distinct non-empty texts (``normalise_key``) both contain."""
    names = list(test_sets)
    key_sets = {name: keys(rows) - {""} for name, rows in test_sets.items()}
    return {a: {b: len(key_sets[a] & key_sets[b]) for b in names[i + 1 :]} for i, a in enumerate(names[:-1])}


def _deleak(rows: list[dict], test_keys: set[str], transfer_keys: set[str], counts: Counter) -> list[dict]:
    """Remove texts of the task test set, then of any transfer test set (a text in both counts once, as the first)."""
    counts["dropped_leak_in_test"] += 0  # reported even when zero
    counts["dropped_leak_in_transfer_test"] += 0
    rows = remove_overlap(rows, test_keys, counts, "dropped_leak_in_test")
    return remove_overlap(rows, transfer_keys, counts, "dropped_leak_in_transfer_test")


def _summary(rows: list[dict], counts: Counter) -> dict:
    return {
        **dict(sorted(counts.items())),
        "rows": len(rows),
        "labels": dict(sorted(Counter(r["label"] for r in rows).items())),
    }


def prepare(
    params: PrepareParams,
    out_dir: str | Path,
    metrics_path: str | Path,
    transfer_dir: str | Path | None = None,
    pairs: list[str] | None = None,
) -> dict:
    """Write the task (and English) splits and the label set; return the counts written to metrics.

    ``transfer_dir`` holds the transfer pairs' test sets (written by :func:`prepare_transfer`): their texts
    are removed from the training and dev data, and their labels must be task labels. ``pairs`` names the
    configured pairs (None: every folder there).
    """
    c = {s: Counter() for s in ("train", "dev", "test")}
    train = _load_clean(params.task, "train", params.cleaning, c["train"])
    dev = _load_clean(params.task, "dev", params.cleaning, c["dev"])
    test = _load_clean(params.task, "test", params.cleaning, c["test"], keep_all=True)
    transfer = {name: (path, read_jsonl(path)) for name, path in transfer_test_files(transfer_dir, pairs).items()}

    # leakage, one way only: a test text (task or transfer) leaves train and dev; test sets stay whole
    test_keys = keys(test)
    transfer_keys = set().union(*(keys(rows) for _, rows in transfer.values()))
    dev = _deleak(dev, test_keys, transfer_keys, c["dev"])
    train = _deleak(train, test_keys, transfer_keys, c["train"])
    c["train"]["dropped_leak_in_dev"] += 0
    train = remove_overlap(train, keys(dev), c["train"], "dropped_leak_in_dev")
    train = _subsample(train, params.max_train, params.seed, c["train"])
    dev = _subsample(dev, params.max_dev, params.seed, c["dev"])

    labels = sorted({r["label"] for r in train})
    if len(labels) < 2:
        raise DataError(f"{params.task.path}: train split has {len(labels)} label(s); classification needs two or more")
    _check_labels(dev, labels, f"{params.task.path} [dev]")
    _check_labels(test, labels, f"{params.task.path} [test]")
    for name, (path, rows) in transfer.items():
        _check_labels(rows, labels, f"{path} (transfer pair '{name}')")

    english: dict[str, tuple[list[dict], Counter]] = {}
    if params.english is not None:
        for split in ("train", "dev"):
            counts = Counter()
            rows = _load_clean(params.english, split, params.cleaning, counts, required=split == "train")
            if rows is None:
                continue
            rows = _deleak(rows, test_keys, transfer_keys, counts)
            if split == "train":
                rows = _subsample(rows, params.max_english, params.seed, counts)
            _check_labels(rows, labels, f"{params.english.path} [{split}]")
            english[split] = (rows, counts)

    report: dict = {"task": {"path": params.task.path}}
    with atomic_dir(out_dir) as tmp:
        for split, rows in (("train", train), ("dev", dev), ("test", test)):
            write_jsonl(tmp / "task" / f"{split}.jsonl", rows)
            report["task"][split] = _summary(rows, c[split])
        write_json(tmp / "labels.json", labels)
        if params.english is not None:
            report["english"] = {"path": params.english.path}
            for split, (rows, counts) in english.items():
                write_jsonl(tmp / "english" / f"{split}.jsonl", rows)
                report["english"][split] = _summary(rows, counts)
            # joint training set: code-mixed and English examples interleaved; dev stays code-mixed
            joint = train + english["train"][0]
            random.Random(params.seed).shuffle(joint)
            write_jsonl(tmp / "joint" / "train.jsonl", joint)
            write_jsonl(tmp / "joint" / "dev.jsonl", dev)
    # test sets, all kept whole: duplicates inside each, and the texts each pair of them shares
    report["transfer"] = {
        name: {
            "path": str(path),
            "rows": len(rows),
            "duplicate_kept": _duplicates(rows, params.cleaning.min_chars),
            "labels": dict(sorted(Counter(r["label"] for r in rows).items())),
        }
        for name, (path, rows) in transfer.items()
    }
    report["test_overlap"] = _test_overlap({"task": test, **{name: rows for name, (_, rows) in transfer.items()}})
    write_json(metrics_path, report)
    log.info(
        "prepared %d/%d/%d task rows (train/dev/test), labels %s; %d transfer test set(s)",
        len(train),
        len(dev),
        len(test),
        ", ".join(labels),
        len(transfer),
    )
    return report


def prepare_transfer(
    name: str,
    spec: DatasetSpec,
    cleaning: CleaningParams,
    out_dir: str | Path,
    metrics_path: str | Path,
) -> dict:
    """Write ``<out_dir>/test.jsonl``: a test set of another language pair, whole (only ``label_map`` drops rows).

    Its labels are checked against the task's, and its texts removed from the task's training data, by
    :func:`prepare`, which reads every transfer test set.
    """
    counts = Counter()
    rows = _load_clean(spec, "test", cleaning, counts, keep_all=True)
    if not rows:
        raise DataError(f"{spec.path} [test] (transfer pair '{name}'): no rows left after label_map")
    with atomic_dir(out_dir) as tmp:
        write_jsonl(tmp / "test.jsonl", rows)
    report = {"path": spec.path, "test": _summary(rows, counts)}
    write_json(metrics_path, report)
    log.info("prepared transfer pair %s: %d test rows", name, len(rows))
    return report
