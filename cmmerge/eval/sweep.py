"""λ sweep of task arithmetic: merge θ_base + λ·τ_cpt for each λ, fine-tune briefly, score dev and test.

The pipeline's ``merge``/``finetune@ta_ft`` stages run one λ (``merge.lambda``); ``dvc exp run -S
merge.lambda=…`` makes one experiment per value. This is the in-stage alternative: one stage walks a
grid of λ with the same recipe the pipeline uses (cmmerge.merge task arithmetic, then
:func:`run_finetune`) and writes one record per λ to ``metrics/sweep.json``, which ``dvc plots``
renders as dev and test macro-F1 against λ.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import ConfigError
from cmmerge.eval.plots import write_sweep
from cmmerge.fsutil import read_json, read_jsonl

log = logging.getLogger(__name__)


@dataclass
class SweepParams:
    """``sweep`` section of params.yaml."""

    lambdas: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    seeds: list[int] = field(default_factory=lambda: [1])  # fine-tuning seeds per λ (scores are averaged)
    keep_models: bool = False  # merged and fine-tuned checkpoints are deleted once scored (disk)

    def validate(self, where: str) -> None:
        if not self.lambdas:
            raise ConfigError(f"{where}.lambdas must list at least one value")
        if len(set(self.lambdas)) != len(self.lambdas):
            raise ConfigError(f"{where}.lambdas has duplicates: {self.lambdas}")
        if not self.seeds:
            raise ConfigError(f"{where}.seeds must list at least one seed")


def best_lambda(records: list[dict], where: str = "metrics/sweep.json") -> float:
    """The λ with the best seed-mean dev macro-F1 of a sweep; on a tie, the one listed first in the grid.

    This is how ``merge.lambda: dev`` chooses λ: on dev, never on test.
    """
    if not records:
        raise ConfigError(f"{where} holds no λ records: rerun the sweep stage (`dvc repro sweep`)")
    missing = [i for i, r in enumerate(records) if "lambda" not in r or "dev_macro_f1" not in r]
    if missing:
        raise ConfigError(
            f"{where}: record(s) {missing} lack 'lambda' or 'dev_macro_f1'; it was not written by the sweep "
            "stage of this version: rerun it (`dvc repro sweep`)"
        )
    return float(max(records, key=lambda r: r["dev_macro_f1"])["lambda"])


def lambda_from_sweep(path: str | Path) -> float:
    """:func:`best_lambda` of the sweep written at ``path`` (a clear error if the sweep has not run)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"merge.lambda is 'dev' (choose λ on dev from the sweep), but {path} does not exist: run the sweep "
            "stage first (`dvc repro sweep`) or set merge.lambda to a number"
        )
    lam = best_lambda(read_json(path), str(path))
    log.info("λ chosen on dev from %s: %g", path, lam)
    return lam


def run_sweep(
    base: str | Path,
    cpt: str | Path,
    train_dir: str | Path,
    test_path: str | Path,
    labels_path: str | Path,
    params: SweepParams,
    finetune,
    work_dir: str | Path,
    out_path: str | Path,
    eval_batch_size: int = 64,
    png_path: str | Path | None = None,
) -> list[dict]:
    """Walk ``params.lambdas``; returns (and writes to ``out_path``) one record per λ.

    ``finetune`` is a :class:`cmmerge.train.finetune.FinetuneParams` (its ``seeds`` are replaced by
    ``params.seeds``); dev is ``train_dir/dev.jsonl``, test is ``test_path``. Each record holds λ, the
    seed-mean dev and test macro-F1, their std over seeds and the per-seed scores.
    """
    import dataclasses

    import numpy as np

    from cmmerge.eval.predict import macro_f1
    from cmmerge.merge import MergeConfig, run_merge
    from cmmerge.train.finetune import run_finetune

    params.validate("sweep")
    train_dir, work_dir = Path(train_dir), Path(work_dir)
    labels = read_json(labels_path)
    dev_rows = read_jsonl(train_dir / "dev.jsonl")
    test_rows = read_jsonl(test_path)
    ft = dataclasses.replace(finetune, seeds=list(params.seeds))
    rows = []
    for lam in params.lambdas:
        tag = f"lambda{lam:g}"
        merged = work_dir / tag / "merged"
        cfg = MergeConfig.from_dict(
            {
                "merge_method": "task_arithmetic",
                "base_model": str(base),
                "missing_tensors": "base",
                "models": [{"model": str(cpt), "name": "cpt", "parameters": {"weight": float(lam)}}],
            },
            where=f"sweep λ={lam:g}",
        )
        run_merge(cfg, merged)
        dev, test = {}, {}
        for seed in ft.seeds:
            out = work_dir / tag / f"seed{seed}"
            # resume=False: a sweep point is cheap and a stale checkpoint from another grid must not leak in
            run_finetune(merged, train_dir, labels_path, ft, seed, out, work_dir / tag / f"live{seed}", resume=False)
            dev[seed] = macro_f1(out, dev_rows, labels, ft.max_length, eval_batch_size)
            test[seed] = macro_f1(out, test_rows, labels, ft.max_length, eval_batch_size)
        row = {
            "lambda": float(lam),
            "dev_macro_f1": float(np.mean(list(dev.values()))),
            "test_macro_f1": float(np.mean(list(test.values()))),
            "dev_std": float(np.std(list(dev.values()), ddof=1)) if len(dev) > 1 else 0.0,
            "test_std": float(np.std(list(test.values()), ddof=1)) if len(test) > 1 else 0.0,
            # flat per-seed fields: DVC plot records must not nest
            **{f"dev_seed{s}": v for s, v in dev.items()},
            **{f"test_seed{s}": v for s, v in test.items()},
        }
        log.info("λ=%g: dev macro-F1 %.4f, test macro-F1 %.4f", lam, row["dev_macro_f1"], row["test_macro_f1"])
        rows.append(row)
        if not params.keep_models:
            shutil.rmtree(work_dir / tag, ignore_errors=True)
    out_rows = write_sweep(rows, out_path)
    if png_path is not None:
        from cmmerge.eval.plots import save_png_sweep

        save_png_sweep(out_rows, png_path)
    return out_rows
