"""The ``evaluate@method`` stage: score every seed's model on the in-pair and transfer test sets.

Writes ``metrics/eval/<method>.json`` (the contract in docs/design.md: ``macro_f1``, ``weighted_f1``,
``accuracy``, ``n`` for the in-pair test set, averaged over seeds, the per-seed scores, and one
object per transfer pair under ``transfer``), the raw predictions for the report's significance
tests, and a confusion-matrix plot file for ``dvc plots``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from cmmerge.data.transfer import transfer_test_files
from cmmerge.errors import DataError
from cmmerge.eval.metrics import classification_metrics
from cmmerge.eval.plots import confusion_records
from cmmerge.eval.predict import Classifier
from cmmerge.eval.stats import seed_interval
from cmmerge.fsutil import read_json, read_jsonl, write_json
from cmmerge.params import require

log = logging.getLogger(__name__)
SCALARS = ("macro_f1", "weighted_f1", "accuracy")


@dataclass
class EvaluateParams:
    """``evaluate`` section of params.yaml."""

    max_length: int = 128
    batch_size: int = 64

    def validate(self, where: str) -> None:
        # a batch size below 1 would score nothing (every prediction the first label) instead of failing
        require(self.batch_size >= 1, f"{where}.batch_size must be at least 1, got {self.batch_size}")
        require(self.max_length >= 2, f"{where}.max_length must be at least 2 tokens, got {self.max_length}")


def seed_dirs(models_dir: str | Path) -> dict[int, Path]:
    """``seed<k>`` sub-folders of a fine-tuning output, by seed."""
    found = {}
    for path in sorted(Path(models_dir).glob("seed*")):
        m = re.fullmatch(r"seed(-?\d+)", path.name)
        if m and path.is_dir():
            found[int(m.group(1))] = path
    if not found:
        raise DataError(f"{models_dir}: no seed<k> model folders (run the finetune stage first)")
    return found


def test_sets(
    prepared_dir: str | Path, transfer_dir: str | Path | None, pairs: list[str] | None = None
) -> dict[str, Path]:
    """The in-pair test set (``task``) and the configured transfer pairs' test sets, by name."""
    return {"task": Path(prepared_dir) / "task" / "test.jsonl", **transfer_test_files(transfer_dir, pairs)}


def _aggregate(per_seed: dict[int, dict]) -> dict:
    out = {k: seed_interval([m[k] for m in per_seed.values()])["mean"] for k in SCALARS}
    out["macro_f1_std"] = seed_interval([m["macro_f1"] for m in per_seed.values()])["std"]
    out["n"] = next(iter(per_seed.values()))["n"]
    out["seeds"] = {str(s): {k: m[k] for k in SCALARS} for s, m in per_seed.items()}
    return out


def _per_class_and_confusion(per_seed: dict[int, dict]) -> dict:
    """Per-class precision/recall/F1 averaged over seeds, and the confusion matrix summed over seeds.

    Summing keeps the matrix in item counts (``n_seeds × n`` in all), so it still reads as "how often
    was gold class i predicted as j" while covering every seed rather than an arbitrary first one.
    """
    import numpy as np

    seeds = list(per_seed.values())
    labels = seeds[0]["confusion"]["labels"]
    per_class = {
        lab: {
            **{k: float(np.mean([m["per_class"][lab][k] for m in seeds])) for k in ("precision", "recall", "f1")},
            "support": seeds[0]["per_class"][lab]["support"],
        }
        for lab in labels
    }
    matrix = np.sum([m["confusion"]["matrix"] for m in seeds], axis=0).tolist()
    return {"per_class": per_class, "confusion": {"labels": labels, "matrix": matrix, "summed_over_seeds": len(seeds)}}


def evaluate_method(
    method: str,
    models_dir: str | Path,
    prepared_dir: str | Path,
    transfer_dir: str | Path | None,
    params: EvaluateParams,
    metrics_path: str | Path,
    predictions_path: str | Path,
    confusion_path: str | Path,
    pairs: list[str] | None = None,
) -> dict:
    labels = read_json(Path(prepared_dir) / "labels.json")
    seeds = seed_dirs(models_dir)
    sets = test_sets(prepared_dir, transfer_dir, pairs)
    rows = {name: read_jsonl(path) for name, path in sets.items()}
    preds: dict[str, dict[int, list[str]]] = {name: {} for name in sets}
    for seed, model_dir in seeds.items():
        classifier = Classifier(model_dir, params.max_length, params.batch_size)
        for name, data in rows.items():
            preds[name][seed] = classifier.predict([r["text"] for r in data])
    per_set = {}
    for name, data in rows.items():
        gold = [r["label"] for r in data]
        per_seed = {s: classification_metrics(gold, p, labels) for s, p in preds[name].items()}
        per_set[name] = _aggregate(per_seed)
        per_set[name].update(_per_class_and_confusion(per_seed))
        log.info(
            "%s on %s: macro-F1 %.4f ± %.4f over %d seed(s)",
            method,
            name,
            per_set[name]["macro_f1"],
            per_set[name]["macro_f1_std"],
            len(per_seed),
        )
    report = {
        **per_set["task"],
        "method": method,
        "transfer": {k: v for k, v in per_set.items() if k != "task"},
    }
    write_json(metrics_path, report)
    write_json(
        predictions_path,
        {
            "labels": labels,
            "sets": {
                name: {
                    "ids": [r["id"] for r in rows[name]],
                    "gold": [r["label"] for r in rows[name]],
                    "pred": {str(s): p for s, p in preds[name].items()},
                }
                for name in rows
            },
        },
    )
    # DVC's confusion template reads one {actual, predicted} record per item (first seed, in-pair test)
    first_seed = min(seeds)
    write_json(confusion_path, confusion_records([r["label"] for r in rows["task"]], preds["task"][first_seed]))
    return report
