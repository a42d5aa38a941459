"""The ``prepare`` and ``prepare_transfer`` stages: load, clean, de-leak and write the labelled data.

Outputs of ``prepare`` (under ``data/prepared``): ``task/{train,dev,test}.jsonl``,
``english/{train,dev}.jsonl`` and ``joint/{train,dev}.jsonl`` (if English data is configured), and
``labels.json`` (the label set, in the order of the classifier's ids). ``prepare_transfer@<pair>``
writes ``data/transfer/<pair>/test.jsonl``. Every row dropped or changed is counted by reason.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.data.cleaning import CleaningParams, clean_rows, keys, remove_overlap
from cmmerge.data.loaders import DatasetSpec, load_split
from cmmerge.errors import DataError
from cmmerge.fsutil import atomic_dir, read_json, read_jsonl, write_json, write_jsonl

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


def _load_clean(spec: DatasetSpec, split: str, cleaning: CleaningParams, counts: Counter, required=True):
    rows = load_split(spec, split, required=required, counts=counts)
    if rows is None:
        return None
    counts["rows_read"] += len(rows)
    rows = _map_labels(rows, spec, counts)
    return clean_rows(rows, cleaning, counts)


def _check_labels(rows: list[dict], labels: list[str], where: str) -> None:
    unseen = sorted({r["label"] for r in rows} - set(labels))
    if unseen:
        raise DataError(
            f"{where}: label(s) {', '.join(map(repr, unseen))} never occur in the task's train split "
            f"(train labels: {', '.join(labels)}); map or drop them with label_map"
        )


def _summary(rows: list[dict], counts: Counter) -> dict:
    return {
        **dict(sorted(counts.items())),
        "rows": len(rows),
        "labels": dict(sorted(Counter(r["label"] for r in rows).items())),
    }


def prepare(params: PrepareParams, out_dir: str | Path, metrics_path: str | Path) -> dict:
    """Write the task (and English) splits and the label set; return the counts written to metrics."""
    c = {s: Counter() for s in ("train", "dev", "test")}
    train = _load_clean(params.task, "train", params.cleaning, c["train"])
    dev = _load_clean(params.task, "dev", params.cleaning, c["dev"])
    test = _load_clean(params.task, "test", params.cleaning, c["test"])

    # leakage: a text may sit in one split only; the evaluation splits stay intact
    test_keys = keys(test)
    dev = remove_overlap(dev, test_keys, c["dev"], "dropped_leak_in_test")
    train = remove_overlap(train, test_keys, c["train"], "dropped_leak_in_test")
    train = remove_overlap(train, keys(dev), c["train"], "dropped_leak_in_dev")
    train = _subsample(train, params.max_train, params.seed, c["train"])
    dev = _subsample(dev, params.max_dev, params.seed, c["dev"])

    labels = sorted({r["label"] for r in train})
    if len(labels) < 2:
        raise DataError(f"{params.task.path}: train split has {len(labels)} label(s); classification needs two or more")
    _check_labels(dev, labels, f"{params.task.path} [dev]")
    _check_labels(test, labels, f"{params.task.path} [test]")

    report: dict = {"task": {"path": params.task.path}}
    with atomic_dir(out_dir) as tmp:
        for split, rows in (("train", train), ("dev", dev), ("test", test)):
            write_jsonl(tmp / "task" / f"{split}.jsonl", rows)
            report["task"][split] = _summary(rows, c[split])
        write_json(tmp / "labels.json", labels)
        if params.english is not None:
            report["english"] = {"path": params.english.path}
            for split in ("train", "dev"):
                counts = Counter()
                rows = _load_clean(params.english, split, params.cleaning, counts, required=split == "train")
                if rows is None:
                    continue
                rows = remove_overlap(rows, test_keys, counts, "dropped_leak_in_test")
                if split == "train":
                    rows = _subsample(rows, params.max_english, params.seed, counts)
                _check_labels(rows, labels, f"{params.english.path} [{split}]")
                write_jsonl(tmp / "english" / f"{split}.jsonl", rows)
                report["english"][split] = _summary(rows, counts)
                if split == "train":
                    # joint training set: code-mixed and English examples interleaved; dev stays code-mixed
                    joint = train + rows
                    random.Random(params.seed).shuffle(joint)
                    write_jsonl(tmp / "joint" / "train.jsonl", joint)
                    write_jsonl(tmp / "joint" / "dev.jsonl", dev)
    write_json(metrics_path, report)
    log.info(
        "prepared %d/%d/%d task rows (train/dev/test), labels %s",
        len(train),
        len(dev),
        len(test),
        ", ".join(labels),
    )
    return report


def prepare_transfer(
    name: str,
    spec: DatasetSpec,
    cleaning: CleaningParams,
    prepared_dir: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
) -> dict:
    """Write ``<out_dir>/test.jsonl``: a test set of another language pair, in the task's label set."""
    prepared_dir = Path(prepared_dir)
    labels = read_json(prepared_dir / "labels.json")
    counts = Counter()
    rows = _load_clean(spec, "test", cleaning, counts)
    # a transfer test item that was seen in training is not a transfer test
    rows = remove_overlap(
        rows, keys(read_jsonl(prepared_dir / "task" / "train.jsonl")), counts, "dropped_leak_in_train"
    )
    _check_labels(rows, labels, f"{spec.path} [test] (transfer pair '{name}')")
    with atomic_dir(out_dir) as tmp:
        write_jsonl(tmp / "test.jsonl", rows)
    report = {"path": spec.path, "test": _summary(rows, counts)}
    write_json(metrics_path, report)
    log.info("prepared transfer pair %s: %d test rows", name, len(rows))
    return report
