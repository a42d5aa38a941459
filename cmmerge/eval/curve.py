"""Learning curve: does what merging adds shrink as task labels grow?

For each training size n, the task data is prepared exactly as the ``prepare`` stage prepares it with
``prepare.max_train: n`` (same cleaning, de-leaking and seeded stratified subsample, so the point at
the pipeline's own size reproduces its training set), every listed method is fine-tuned from its
starting point with the shared recipe, once per seed, and scored on the whole task test set like
``evaluate`` scores it. Each method is compared with the reference (the first listed) at every size
by a Welch t-test over seeds with the test-item variance in its standard error
(:func:`cmmerge.eval.stats.seed_item_test`), Holm-corrected over all sizes and methods.

At the pipeline's own size the curve trains the main table's models again (same data, recipe and seeds). Given
the finetune stage's folder (``finetuned``: ``<method>/seed<s>/``), a cell whose training fingerprint
(:func:`cmmerge.train.finetune.training_fingerprint`) equals that of the model there scores that model instead
of training it: the same weights, so the same predictions (a test compares both ways), minus one fine-tuning per
method and seed.

A finished (size, method, seed) cell is kept under the work folder with a fingerprint of everything
it depends on (params, starting checkpoint, training data, the training and scoring code), so a run
that is killed, or that spans sessions, resumes at the first missing cell.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.data.prepare import PrepareParams, prepare
from cmmerge.errors import ConfigError, DataError
from cmmerge.eval.compact import decode, encode
from cmmerge.fsutil import read_json, read_jsonl, write_json
from cmmerge.params import require
from cmmerge.train.finetune import FinetuneParams, MethodSpec, trained_model, training_fingerprint
from cmmerge.train.kept import cell_fingerprint, cells_dir, keep, load_kept

log = logging.getLogger(__name__)


@dataclass
class CurveParams:
    """``curve`` section of params.yaml."""

    sizes: list[int] = field(default_factory=lambda: [100, 200, 400])  # task training rows (stratified subsample)
    methods: list[str] = field(default_factory=lambda: ["full_ft", "ta_ft"])  # from `methods`; first: reference
    seeds: list[int] = field(default_factory=lambda: [1])
    n_boot: int = 10_000
    boot_seed: int = 0

    def validate(self, where: str) -> None:
        require(bool(self.sizes), f"{where}.sizes must list at least one training size")
        require(all(n >= 2 for n in self.sizes), f"{where}.sizes must be at least 2 rows each, got {self.sizes}")
        require(len(set(self.sizes)) == len(self.sizes), f"{where}.sizes has duplicates: {self.sizes}")
        require(len(self.methods) >= 1, f"{where}.methods must name at least one method")
        require(len(set(self.methods)) == len(self.methods), f"{where}.methods has duplicates: {self.methods}")
        require(bool(self.seeds) and len(set(self.seeds)) == len(self.seeds), f"{where}.seeds: distinct seeds")
        require(self.n_boot >= 1, f"{where}.n_boot must be at least 1, got {self.n_boot}")


def _train_folder(spec: MethodSpec, prepared_root: str, prepared: Path, where: str) -> Path:
    """The method's training folder inside this size's prepared data (``data/prepared/task`` → ``<n>/task``)."""
    root = Path(prepared_root)
    train = Path(spec.train)
    if root not in train.parents:
        raise ConfigError(
            f"{where}.train is {spec.train}, outside {prepared_root}: the learning curve re-prepares the data per "
            "size, so it can only train on prepared folders"
        )
    return prepared / train.relative_to(root)


def run_curve(
    params: CurveParams,
    prepare_params: PrepareParams,
    methods: dict[str, MethodSpec],
    finetune: FinetuneParams,
    work_dir: str | Path,
    records_path: str | Path,
    summary_path: str | Path,
    eval_max_length: int,
    eval_batch_size: int,
    transfer_dir: str | Path | None = None,
    pairs: list[str] | None = None,
    prepared_root: str = "data/prepared",
    png_path: str | Path | None = None,
    finetuned: str | Path | None = None,
) -> dict:
    """Run (or resume) every cell of the curve; write the plot records and the summary; return the summary.

    ``finetuned``: the finetune stage's models (``<method>/seed<s>/``), taken for a cell that would train the
    very same model (see the module's docstring)."""
    import numpy as np

    from cmmerge.eval.metrics import classification_metrics
    from cmmerge.eval.predict import Classifier
    from cmmerge.train.finetune import run_finetune

    params.validate("curve")
    unknown = [m for m in params.methods if m not in methods]
    if unknown:
        raise ConfigError(f"curve.methods: {', '.join(unknown)} not in methods (known: {', '.join(methods)})")
    work_dir = Path(work_dir)
    sizes: dict[int, dict] = {}
    predictions: dict[str, dict] = {}
    gold: list[str] = []
    labels: list[str] = []
    for n in params.sizes:
        prepared = work_dir / f"n{n}" / "prepared"
        sized = dataclasses.replace(prepare_params, max_train=n)
        report = prepare(sized, prepared, work_dir / f"n{n}" / "data.json", transfer_dir, pairs)
        rows = report["task"]["train"]["rows"]
        labels_path = prepared / "labels.json"
        labels = read_json(labels_path)
        test = read_jsonl(prepared / "task" / "test.jsonl")
        if gold and [r["label"] for r in test] != gold:
            raise DataError(f"{prepared}: the task test set differs between training sizes; prepare keeps it whole")
        gold = [r["label"] for r in test]
        preds: dict[str, list[list[str]]] = {}
        done: dict[str, tuple[str, dict]] = {}  # fingerprint -> (method, cell) of the cells of this size so far
        for method in params.methods:
            spec = methods[method]
            where = f"methods.{method}"
            train = _train_folder(spec, prepared_root, prepared, where)
            ft = spec.scaled(finetune, where)
            preds[method] = []
            for seed in params.seeds:
                cell_path = cells_dir(work_dir) / f"n{n}" / method / f"seed{seed}.json"
                # the starting checkpoint counts by its content (an input of the fingerprint), not by its path: a
                # method that starts from the very weights of another with the same settings is the same training
                # run (task arithmetic with λ = 0 chosen on dev starts from θ_base, as full_ft does), so its
                # result is taken from that cell instead of being trained again
                settings = {
                    "finetune": dataclasses.asdict(ft),
                    "spec": {k: v for k, v in dataclasses.asdict(spec).items() if k != "init"},
                    "seed": seed,
                    "eval": [eval_max_length, eval_batch_size],
                }
                fp = cell_fingerprint(settings, spec.init, train, prepared / "task" / "test.jsonl")
                cell = load_kept(cell_path, fp)
                if cell is not None:
                    log.info("curve n=%d %s seed %d: kept (%.4f)", n, method, seed, cell["macro_f1"])
                elif fp in done:
                    twin, cell = done[fp]
                    cell = keep(cell_path, fp, {k: v for k, v in cell.items() if k != "fingerprint"})
                    log.info(
                        "curve n=%d %s seed %d: starts from the weights of %s with its settings, so it is the same "
                        "training run; its result (%.4f) is taken, not trained again",
                        n, method, seed, twin, cell["macro_f1"],
                    )  # fmt: skip
                else:
                    out = work_dir / "model"
                    taken = _finished_model(finetuned, method, seed, spec, train, labels_path, ft)
                    if taken is not None:
                        out, summary = taken
                        log.info("curve n=%d %s seed %d: the finetune stage's model %s, scored, not trained again",
                                 n, method, seed, out)  # fmt: skip
                    else:
                        summary = run_finetune(
                            spec.init, train, labels_path, ft, seed, out, work_dir / "live", resume=False,
                            freeze=spec.freeze, revert=spec.revert,
                        )  # fmt: skip
                    pred = Classifier(out, eval_max_length, eval_batch_size).predict([r["text"] for r in test])
                    if taken is None:
                        shutil.rmtree(out, ignore_errors=True)
                    cell = keep(cell_path, fp, {
                        "rows": rows,
                        "steps": summary["steps"],
                        "macro_f1": classification_metrics(gold, pred, labels)["macro_f1"],
                        "predictions": pred,
                    })  # fmt: skip
                    log.info("curve n=%d %s seed %d: test macro-F1 %.4f", n, method, seed, cell["macro_f1"])
                done.setdefault(fp, (method, cell))
                preds[method].append(cell["predictions"])
                sizes.setdefault(n, {"rows": rows, "methods": {}, "steps": {}})["steps"][method] = cell["steps"]
                sizes[n]["methods"].setdefault(method, {"seeds": {}})["seeds"][str(seed)] = cell["macro_f1"]
        for entry in sizes[n]["methods"].values():
            values = list(entry["seeds"].values())
            entry.update(mean=float(np.mean(values)), std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
        predictions[str(n)] = {
            m: {str(s): encode(p, labels, f"curve n={n} {m}") for s, p in zip(params.seeds, runs, strict=True)}
            for m, runs in preds.items()
        }
    summary = {
        "reference": params.methods[0],
        "methods": list(params.methods),
        "seeds": list(params.seeds),
        "n_boot": params.n_boot,
        "test_items": len(gold),
        "sizes": {str(n): sizes[n] for n in params.sizes},
        # every cell's per-item test predictions (compact), so a record's curve can be tested again
        "predictions": {"labels": labels, "gold": encode(gold, labels, "curve test set"), "sizes": predictions},
    }
    compare_with_reference(summary, params.n_boot, params.boot_seed)
    records = []
    for n in params.sizes:
        rec = {"rows": sizes[n]["rows"]}
        for m in params.methods:
            rec[m] = sizes[n]["methods"][m]["mean"]
            rec[f"{m}_std"] = sizes[n]["methods"][m]["std"]
        records.append(rec)
    write_json(records_path, records)
    write_json(summary_path, summary)
    if png_path is not None:
        save_curve_figure(summary, png_path)
    return summary


def _finished_model(
    finetuned: str | Path | None,
    method: str,
    seed: int,
    spec: MethodSpec,
    train: Path,
    labels_path: Path,
    ft: FinetuneParams,
) -> tuple[Path, dict] | None:
    """The finetune stage's model of ``method`` and ``seed`` and its training summary, if it is the model this
    cell would train (:func:`cmmerge.train.finetune.trained_model`); else ``None``."""
    if finetuned is None:
        return None
    fp = training_fingerprint(spec.init, train, labels_path, ft, seed, spec.freeze, spec.revert)
    return trained_model([Path(finetuned) / method / f"seed{seed}"], fp)


def compare_with_reference(summary: dict, n_boot: int, boot_seed: int) -> dict:
    """Test every method against the reference (the first) at every size, from ``summary["predictions"]``.

    Writes each size's ``vs_reference`` (a :func:`cmmerge.eval.stats.seed_item_test` result, or ``identical``
    for identical predictions) with Holm-adjusted p-values over all sizes and methods, and the summary's
    ``test``, ``n_boot`` and ``n_comparisons``. The curve stage calls it; so does a record of the curve, which
    is tested again by the current code. Returns ``summary``.
    """
    from cmmerge.eval.stats import holm, resampled_seed_scores, same_model, seed_item_test

    stored = summary["predictions"]
    labels = stored["labels"]
    gold = decode(stored["gold"], labels)
    reference, seeds = summary["methods"][0], [str(s) for s in summary["seeds"]]
    tests = []
    for n, entry in summary["sizes"].items():
        entry.pop("vs_reference", None)
        if len(summary["methods"]) < 2:
            continue
        preds = {m: [decode(stored["sizes"][n][m][s], labels) for s in seeds] for m in summary["methods"]}
        scores = resampled_seed_scores(gold, preds, labels, n_boot, boot_seed)
        f1 = {m: [entry["methods"][m]["seeds"][s] for s in seeds] for m in summary["methods"]}
        entry["vs_reference"] = {
            m: same_model(preds[m], preds[reference])
            or seed_item_test(scores[m], scores[reference], f1[m], f1[reference])
            for m in summary["methods"][1:]
        }
        tests += [(n, m) for m, v in entry["vs_reference"].items() if not v.get("identical")]
    adjusted = holm([summary["sizes"][n]["vs_reference"][m]["p_value"] for n, m in tests])
    for (n, m), p in zip(tests, adjusted, strict=True):
        summary["sizes"][n]["vs_reference"][m]["p_holm"] = p
    summary.update(test="seed_item_welch", n_boot=n_boot, n_comparisons=len(tests))
    return summary


def save_curve_figure(summary: dict, path: str | Path) -> None:
    """macro-F1 (mean ± std over seeds) against training rows, one line per method; PNG or SVG by suffix.

    SVGs are written without a date and with a fixed hash salt, so the same summary gives the same bytes
    (README's figure is regenerated from a committed record and compared).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(summary["sizes"].values(), key=lambda s: s["rows"])
    with plt.rc_context({"svg.hashsalt": "cmmerge", "svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
        x = [s["rows"] for s in sizes]
        ref = summary["methods"][0]
        for m in summary["methods"]:
            mean = [100 * s["methods"][m]["mean"] for s in sizes]
            std = [100 * s["methods"][m]["std"] for s in sizes]
            # a method that trained the reference's very models at every size would hide the reference's line:
            # the legend says so and the line is dashed, so both stay visible
            same = m != ref and all(s.get("vs_reference", {}).get(m, {}).get("identical") for s in sizes)
            label, style = (f"{m} (same model as {ref})", "--") if same else (m, "-")
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label, linestyle=style)
        ax.set_xscale("log")
        ax.set_xticks(x, [str(v) for v in x])
        ax.minorticks_off()
        ax.set_xlabel("task training rows")
        ax.set_ylabel("test macro-F1 × 100")
        ax.set_title(f"learning curve (mean ± std over {len(summary['seeds'])} seeds)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={"Date": None} if str(path).endswith(".svg") else None)
        plt.close(fig)
