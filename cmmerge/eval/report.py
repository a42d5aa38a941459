"""The ``report`` stage: one summary of every method, and a Markdown table for a pull request.

``metrics/summary.json`` holds, per method and test set, the mean, std and intervals of macro-F1
over seeds (the per-seed scores read from the evaluate stage's ``metrics/eval/<method>.json``, never
recomputed here, so the report cannot disagree with evaluate), a test against the reference method
(a Welch t over training seeds with the test-item variance in its standard error; :mod:`cmmerge.eval.stats`)
with Holm-adjusted p-values over every comparison of the table, the chance baselines of each test set
(majority class, stratified random) and each method's predicted-label counts per seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cmmerge.errors import DataError
from cmmerge.eval.stats import (
    holm,
    label_distribution,
    majority_baseline,
    resampled_seed_scores,
    same_model,
    seed_interval,
    seed_item_interval,
    seed_item_test,
    stratified_baseline,
)
from cmmerge.fsutil import atomic_file, read_json, read_jsonl, write_json
from cmmerge.params import require

log = logging.getLogger(__name__)
BASELINES = ("majority_class", "stratified_random")


@dataclass
class ReportParams:
    """``report`` section of params.yaml."""

    reference: str = "full_ft"
    n_boot: int = 10_000  # test-item resamples for the item part of the test's standard error
    alpha: float = 0.05  # on Holm-adjusted p-values
    seed: int = 0
    # Welch t over training seeds with the test-item variance in its standard error (stats.seed_item_test)
    test: Literal["seed_item_welch"] = "seed_item_welch"
    in_pair: str = "task"  # the in-pair test set's name in the transfer matrix (e.g. en_hi)

    def validate(self, where: str) -> None:
        require(self.n_boot >= 1, f"{where}.n_boot must be a positive number of resamples, got {self.n_boot}")
        require(0 < self.alpha < 1, f"{where}.alpha must be in (0, 1), got {self.alpha}")


def _read_run(method: str, eval_dir: Path, predictions_dir: Path) -> tuple[dict, dict]:
    paths = {"metrics": eval_dir / f"{method}.json", "predictions": predictions_dir / f"{method}.json"}
    for kind, path in paths.items():
        if not path.is_file():
            raise DataError(f"{path}: {kind} of method '{method}' are missing (run evaluate@{method})")
    return read_json(paths["metrics"]), read_json(paths["predictions"])


def _seed_f1(metrics: dict, name: str, predicted_seeds: list[str], path: Path) -> dict[str, float]:
    """Per-seed macro-F1 of one test set, as the evaluate stage computed it (``path``, a dep of the stage).

    The report reads these rather than scoring the predictions again, so the summary's numbers are
    evaluate's by construction; the predictions serve only the bootstrap and the label counts, and must
    be of the same seeds (else the two files come from different evaluate runs).
    """
    block = metrics if name == "task" else metrics.get("transfer", {}).get(name)
    if block is None or "seeds" not in block:
        raise DataError(f"metrics of '{metrics.get('method')}' have no per-seed scores for test set '{name}'")
    if sorted(block["seeds"]) != sorted(predicted_seeds):
        method = metrics.get("method")
        raise DataError(
            f"{path}: seeds {sorted(block['seeds'])} of test set '{name}' differ from its predictions' "
            f"{sorted(predicted_seeds)}; rerun evaluate@{method}"
        )
    return {s: v["macro_f1"] for s, v in block["seeds"].items()}


def build_report(
    methods: list[str],
    eval_dir: str | Path,
    predictions_dir: str | Path,
    params: ReportParams,
    summary_path: str | Path,
    table_path: str | Path,
    train_path: str | Path,
) -> dict:
    """Write the summary and the Markdown table; ``train_path`` is the task's training split (for the baselines)."""
    eval_dir, predictions_dir = Path(eval_dir), Path(predictions_dir)
    runs = {m: _read_run(m, eval_dir, predictions_dir) for m in methods}
    train_labels = [r["label"] for r in read_jsonl(train_path)]

    def baselines(name: str, gold: list[str]) -> dict[str, dict]:
        return {
            "majority_class": majority_baseline(gold, train_labels),
            "stratified_random": stratified_baseline(gold, train_labels),
        }

    summary = summarize(runs, params, baselines, eval_dir)
    write_json(summary_path, summary)
    with atomic_file(table_path) as fh:
        fh.write(markdown_table(summary, params.alpha))
    return summary


def summarize(runs: dict[str, tuple[dict, dict]], params: ReportParams, baselines, eval_dir: Path) -> dict:
    """The summary of ``runs`` (method → its evaluate metrics and predictions, in table order): per method and
    test set the seed statistics and the test against the reference, Holm-adjusted over the table.

    ``baselines(name, gold)`` gives a test set's chance rows. The report stage computes them from the training
    labels; a record (:mod:`cmmerge.records`) passes the ones it holds, so its table is tested again by this
    code from the record's own predictions.
    """
    methods = list(runs)
    ref = params.reference if params.reference in runs else None
    if ref is None:
        log.warning("reference method '%s' is not among the methods; no significance tests", params.reference)
    labels = runs[methods[0]][1]["labels"]
    sets = list(runs[methods[0]][1]["sets"])

    summary: dict = {
        "reference": ref,
        "test": params.test,
        "n_boot": params.n_boot,
        "method_order": list(methods),  # the params' order (the JSON file itself is key-sorted)
        "methods": {m: {} for m in methods},
        "baselines": {b: {} for b in BASELINES},
        "label_sets": {},
        "predicted_labels": {m: {} for m in methods},
    }
    tests: list[tuple[str, str]] = []
    for name in sets:
        data = runs[methods[0]][1]["sets"][name]
        gold = data["gold"]
        for m in methods:
            other = runs[m][1]["sets"].get(name)
            if other is None or other["ids"] != data["ids"] or other["gold"] != gold:
                raise DataError(f"{name}: the test items of '{m}' and '{methods[0]}' differ; rerun evaluate for both")
        matches = set(gold) == set(labels)
        summary["label_sets"][name] = {"gold": sorted(set(gold)), "matches_task": matches, "n": len(gold)}
        for b, entry in baselines(name, gold).items():
            summary["baselines"][b][name] = entry
        preds = {m: list(runs[m][1]["sets"][name]["pred"].values()) for m in methods}
        scores = resampled_seed_scores(gold, preds, labels, params.n_boot, params.seed)
        f1: dict[str, list[float]] = {}  # per run, in the order of the predictions (the rows of scores[m])
        for m in methods:
            seeds = list(runs[m][1]["sets"][name]["pred"])
            per_seed = _seed_f1(runs[m][0], name, seeds, eval_dir / f"{m}.json")
            f1[m] = [per_seed[s] for s in seeds]
            stats = {**seed_interval(f1[m]), **seed_item_interval(scores[m], f1[m])}
            summary["methods"][m][name] = {**stats, "seeds": per_seed}
            summary["predicted_labels"][m][name] = {
                s: label_distribution(p, labels) for s, p in runs[m][1]["sets"][name]["pred"].items()
            }
        # a test set whose labels differ from the task's is not in the table, so it is not tested either
        if ref is None or not _in_table(name, matches):
            continue
        for m in methods:
            if m != ref:
                same = same_model(runs[m][1]["sets"][name]["pred"], runs[ref][1]["sets"][name]["pred"])
                test = same or seed_item_test(scores[m], scores[ref], f1[m], f1[ref])
                summary["methods"][m][name][f"vs_{ref}"] = test
                if same is None:
                    tests.append((m, name))
    # one family per table: every comparison with the reference, over methods and test sets
    adjusted = holm([summary["methods"][m][name][f"vs_{ref}"]["p_value"] for m, name in tests])
    for (m, name), p in zip(tests, adjusted, strict=True):
        summary["methods"][m][name][f"vs_{ref}"]["p_holm"] = p
    summary["n_comparisons"] = len(tests)
    return summary


def _cell(stats: dict, ref: str | None, alpha: float) -> str:
    text = f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"
    test = stats.get(f"vs_{ref}") if ref else None
    if test is not None and test.get("identical"):
        return text + same_model_cell(ref)
    if test is not None:
        p = test["p_holm"]
        mark = "*" if p < alpha else ""
        text += f" ({100 * test['delta_macro_f1']:+.1f}{mark}, {'p<0.001' if p < 0.0005 else f'p={p:.3f}'})"
    return text


NO_SPREAD = "(± 0.0 is no measure of spread)"  # what a table of one seed says of its ± column


def welch_phrase(n_boot: int) -> str:
    """The name of the test every table uses (:func:`cmmerge.eval.stats.seed_item_test`), for captions: the methods
    and AdaMergeX tables, the learning curve and the claims."""
    return (
        "a Welch t-test over training seeds whose standard error also holds the test-item variance "
        f"({n_boot:,} item resamples; Welch–Satterthwaite degrees of freedom)"
    )


def significance_caption(summary: dict, alpha: float) -> str:
    """How a summary's p-values and the interval column were computed, for the sentence under its table."""
    one_seed = sorted(m for m, e in summary["methods"].items() if e["task"]["n_seeds"] == 1)
    text = (
        f"from {welch_phrase(summary['n_boot'])}, Holm-corrected over the {summary['n_comparisons']} comparisons in "
        f"this table; * marks p < {alpha}. The interval column is the t-interval of the seed mean with the same "
        "two parts"
    )
    if one_seed:
        names = "all methods" if len(one_seed) == len(summary["methods"]) else ", ".join(f"`{m}`" for m in one_seed)
        text += f". With one seed ({names}) no seed variance can be estimated: those tests cover test items only"
    return text


def same_model_cell(ref: str) -> str:
    """What a table cell says instead of a difference and p-value for a method that trained ``ref``'s model."""
    return f" (same model as `{ref}`)"


def same_model_note(ref: str) -> str:
    """The sentence under a table that has a :func:`same_model_cell`."""
    return (
        f"*same model as `{ref}`*: identical predictions on every seed and item (as when task arithmetic with "
        "λ = 0 starts from θ_base, where the reference starts), so no test and not counted in the Holm family."
    )


def _in_table(name: str, labels_match: bool) -> bool:
    """The in-pair set is always shown; a transfer set only where its gold labels are the task's."""
    return name == "task" or labels_match


def table_sets(summary: dict) -> tuple[list[str], list[str]]:
    """Test sets shown (the in-pair set first, then transfer sets whose labels match the task's) and those left out."""
    shown, left = ["task"], []
    for name, info in summary["label_sets"].items():
        if name != "task":
            (shown if _in_table(name, info["matches_task"]) else left).append(name)
    return shown, left


def markdown_table(summary: dict, alpha: float = 0.05, caption: str = "") -> str:
    """Macro-F1 (×100) per method and test set, the chance baselines, and the note that says how to read it."""
    ref = summary["reference"]
    sets, left = table_sets(summary)
    head = ["method", "in-pair macro-F1", *[f"transfer: {s}" for s in sets[1:]], "in-pair 95% CI (seeds × items)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in summary.get("method_order", summary["methods"]):
        entry = summary["methods"][m]
        cells = [f"`{m}`", *[_cell(entry[s], ref, alpha) for s in sets]]
        low, high = (100 * entry["task"][f"ci95_seeds_items_{k}"] for k in ("low", "high"))
        cells.append(f"[{low:.1f}, {high:.1f}]")
        lines.append("| " + " | ".join(cells) + " |")
    for b, entry in summary["baselines"].items():
        lines.append("| " + " | ".join([f"*{b}*", *[f"{100 * entry[s]['macro_f1']:.1f}" for s in sets], "–"]) + " |")
    n_seeds = sorted({e["task"]["n_seeds"] for e in summary["methods"].values()})
    majority = summary["baselines"]["majority_class"]["task"]["predicts"]
    note = [
        (
            f"Macro-F1 × 100 of one seed {NO_SPREAD}."
            if n_seeds == [1]
            else f"Macro-F1 × 100, mean ± std over {'/'.join(map(str, n_seeds))} seeds."
        )
        + (
            f" In parentheses: difference to `{ref}` and its p-value, {significance_caption(summary, alpha)}."
            if ref
            else ""
        ),
        f"*majority_class* always answers the most frequent training label (`{majority}`); *stratified_random* is "
        "the expected score of random answers in the training label proportions.",
    ]
    if any(e[s].get(f"vs_{ref}", {}).get("identical") for e in summary["methods"].values() for s in sets):
        note.append(same_model_note(ref))
    if left:
        note.append(
            "Not shown: "
            + "; ".join(
                f"transfer to {s} (its labels {', '.join(summary['label_sets'][s]['gold'])} differ from the task's)"
                for s in left
            )
            + "."
        )
    if caption:
        note.append(caption)
    return "\n".join(lines) + "\n\n" + " ".join(note) + "\n"
