"""The ``report`` stage: one summary of every method, and a Markdown table for a pull request.

``metrics/summary.json`` (contract in DESIGN.md) holds, per method, the mean, std and 95% interval
of macro-F1 over seeds on the in-pair test set, the same per transfer pair, and a paired bootstrap
test against the reference method (``full_ft``) on the same test items.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cmmerge.errors import DataError
from cmmerge.eval.stats import approximate_randomization, bootstrap_interval, paired_bootstrap, seed_interval
from cmmerge.fsutil import atomic_file, read_json, write_json

log = logging.getLogger(__name__)


@dataclass
class ReportParams:
    """``report`` section of params.yaml."""

    reference: str = "full_ft"
    n_boot: int = 1000  # bootstrap resamples, or randomisation trials
    alpha: float = 0.05
    seed: int = 0
    test: Literal["bootstrap", "randomization"] = "bootstrap"  # paired bootstrap or approximate randomisation
    in_pair: str = "task"  # the in-pair test set's name in the transfer matrix (e.g. en_hi)


def _seed_scores(preds: dict, name: str, labels: list[str]) -> list[float]:
    from cmmerge.eval.metrics import classification_metrics

    data = preds["sets"][name]
    return [classification_metrics(data["gold"], p, labels)["macro_f1"] for p in data["pred"].values()]


def build_report(
    methods: list[str],
    eval_dir: str | Path,
    predictions_dir: str | Path,
    params: ReportParams,
    summary_path: str | Path,
    table_path: str | Path,
) -> dict:
    eval_dir, predictions_dir = Path(eval_dir), Path(predictions_dir)
    preds = {}
    for m in methods:
        path = predictions_dir / f"{m}.json"
        if not path.is_file():
            raise DataError(f"{path}: predictions of method '{m}' are missing (run evaluate@{m})")
        preds[m] = read_json(path)
    ref = params.reference if params.reference in preds else None
    if ref is None:
        log.warning("reference method '%s' is not among the methods; no significance tests", params.reference)
    summary: dict = {}
    for m in methods:
        labels = preds[m]["labels"]
        entry: dict = {}
        for name in preds[m]["sets"]:
            stats = seed_interval(_seed_scores(preds[m], name, labels))
            data = preds[m]["sets"][name]
            stats.update(
                bootstrap_interval(data["gold"], list(data["pred"].values()), labels, params.n_boot, params.seed)
            )
            stats.pop("macro_f1")  # the seed mean is already there as "mean"
            if ref is not None and m != ref and name in preds[ref]["sets"]:
                ref_data = preds[ref]["sets"][name]
                if ref_data["ids"] != data["ids"]:
                    raise DataError(f"{name}: the test items of '{m}' and '{ref}' differ; rerun evaluate for both")
                paired = paired_bootstrap if params.test == "bootstrap" else approximate_randomization
                test = paired(
                    data["gold"],
                    list(data["pred"].values()),
                    list(ref_data["pred"].values()),
                    labels,
                    params.n_boot,
                    params.seed,
                )
                stats[f"vs_{ref}"] = {**test, "test": params.test}
            if name == "task":
                entry["macro_f1"] = stats
            else:
                entry.setdefault("transfer", {})[name] = {"macro_f1": stats}
        summary[m] = entry
    write_json(summary_path, summary)
    with atomic_file(table_path) as fh:
        fh.write(markdown_table(summary, ref, params.alpha, params.test))
    return summary


def _cell(stats: dict, ref: str | None, alpha: float) -> str:
    text = f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"
    test = stats.get(f"vs_{ref}") if ref else None
    if test is not None:
        mark = "*" if test["p_value"] < alpha else ""
        text += f" ({100 * test['delta_macro_f1']:+.1f}{mark}, p={test['p_value']:.3f})"
    return text


def markdown_table(summary: dict, ref: str | None, alpha: float = 0.05, test: str = "bootstrap") -> str:
    """Macro-F1 (×100) mean ± std over seeds per method and test set; * marks p < alpha vs the reference."""
    sets = ["task", *sorted({t for e in summary.values() for t in e.get("transfer", {})})]
    head = ["method", "in-pair macro-F1", *[f"transfer: {s}" for s in sets[1:]], "95% CI (seeds)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, e in summary.items():
        cells = [f"`{m}`", _cell(e["macro_f1"], ref, alpha)]
        cells += [
            _cell(e["transfer"][s]["macro_f1"], ref, alpha) if s in e.get("transfer", {}) else "–" for s in sets[1:]
        ]
        cells.append(f"[{100 * e['macro_f1']['ci95_low']:.1f}, {100 * e['macro_f1']['ci95_high']:.1f}]")
        lines.append("| " + " | ".join(cells) + " |")
    note = (
        f"\nMacro-F1 × 100, mean ± std over seeds. In parentheses: difference to `{ref}` and the p-value of a "
        f"paired {'bootstrap' if test == 'bootstrap' else 'approximate randomisation'} test over the same test "
        f"items; * marks p < {alpha}. Last column: 95% t-interval of the in-pair mean over seeds.\n"
        if ref
        else "\nMacro-F1 × 100, mean ± std over seeds.\n"
    )
    return "\n".join(lines) + "\n" + note
