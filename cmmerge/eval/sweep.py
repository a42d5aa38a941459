"""λ sweep of a merge: set ``parameters.lambda`` of one ``merges`` entry (task arithmetic by default) to each λ of
a grid, merge, fine-tune briefly, score dev and test.

The pipeline's ``merge@ta``/``finetune@ta_ft`` stages run one λ (``merges.ta.parameters.lambda``); ``dvc exp
run -S merges.ta.parameters.lambda=…`` makes one experiment per value. This is the in-stage alternative: one
stage walks a grid of λ with the same recipe the pipeline uses (the entry's own merge config, then
:func:`run_finetune`) and writes one record per λ to ``metrics/sweep.json``, which ``dvc plots`` renders as
dev and test macro-F1 against λ, and from which ``lambda: dev`` takes the best dev λ (:mod:`cmmerge.selection`).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import ConfigError
from cmmerge.eval.plots import write_sweep
from cmmerge.fsutil import read_json, read_jsonl
from cmmerge.selection import best_on_dev

log = logging.getLogger(__name__)


@dataclass
class SweepParams:
    """``sweep`` section of params.yaml."""

    merge: str = "ta"  # the ``merges`` entry whose ``parameters.lambda`` is swept (and may be ``dev``)
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
    """The λ with the best seed-mean dev macro-F1 of a sweep (:func:`cmmerge.selection.best_on_dev`)."""
    return float(best_on_dev(records, ("lambda",), where, "rerun the sweep stage (`dvc repro sweep`)")["lambda"])


def run_sweep(
    name: str,
    entry: dict,
    train_dir: str | Path,
    test_path: str | Path,
    labels_path: str | Path,
    params: SweepParams,
    finetune,
    work_dir: str | Path,
    out_path: str | Path,
    eval_max_length: int,
    eval_batch_size: int,
    png_path: str | Path | None = None,
    take_from: Sequence[str | Path] = (),
) -> list[dict]:
    """Walk ``params.lambdas`` over the merge ``entry`` (``merges.<name>``, its ``parameters.lambda`` set to each
    λ); returns (and writes to ``out_path``) one record per λ, each naming the entry it swept (``merge``).

    ``finetune`` is a :class:`cmmerge.train.finetune.FinetuneParams` (its ``seeds`` are replaced by
    ``params.seeds``); dev is ``train_dir/dev.jsonl``, test is ``test_path``, both scored as ``evaluate``
    scores test (``eval_max_length``, ``eval_batch_size``). Each record holds λ, the seed-mean dev and
    test macro-F1, their std over seeds and the per-seed scores.

    ``take_from``: folders of models another stage trained (the recipe stage's chosen ones); a (λ, seed) whose
    training run is one of them (same fingerprint: a merge equal to its starting point in value, the same settings
    and data) takes it instead of training (:func:`cmmerge.train.finetune.run_finetune`).
    """
    import dataclasses

    import numpy as np

    from cmmerge.eval.predict import macro_f1
    from cmmerge.merge import run_merge
    from cmmerge.sections import merge_config
    from cmmerge.train.finetune import run_finetune
    from cmmerge.train.kept import cell_fingerprint, cells_dir, keep, load_kept

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
        cfg = merge_config(entry, f"sweep λ={lam:g}", lam=float(lam))
        inputs = sorted({m.model for m in cfg.models} | ({cfg.base_model} if cfg.base_model else set()))
        dev, test = {}, {}
        for seed in ft.seeds:
            # each (λ, seed) is kept once scored: the entry's own λ does not matter to the sweep, so a change of
            # it reruns this stage through kept cells in seconds and writes the same record
            cell_path = cells_dir(work_dir) / tag / f"seed{seed}.json"
            settings = {"merge": cfg.to_dict(), "finetune": dataclasses.asdict(ft), "seed": seed}
            settings["eval"] = [eval_max_length, eval_batch_size]
            fp = cell_fingerprint(settings, *inputs, train_dir, test_path, labels_path)
            cell = load_kept(cell_path, fp)
            if cell is None:
                if not merged.is_dir():
                    run_merge(cfg.resolve(f"sweep λ={lam:g}"), merged)
                out = work_dir / tag / f"seed{seed}"
                # resume=False: a sweep point is cheap and a stale checkpoint from another grid must not leak in
                live = work_dir / tag / f"live{seed}"
                run_finetune(
                    merged, train_dir, labels_path, ft, seed, out, live, resume=False, take_from=take_from or []
                )
                cell = keep(cell_path, fp, {
                    "dev": macro_f1(out, dev_rows, labels, eval_max_length, eval_batch_size),
                    "test": macro_f1(out, test_rows, labels, eval_max_length, eval_batch_size),
                })  # fmt: skip
            else:
                log.info("λ=%g seed %d: kept", lam, seed)
            dev[seed], test[seed] = cell["dev"], cell["test"]
        row = {
            "merge": name,  # the entry whose `lambda: dev` this record may choose (cmmerge.selection)
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
            shutil.rmtree(work_dir / tag, ignore_errors=True)  # the kept cells live in work_dir/cells
    out_rows = write_sweep(rows, out_path)
    if png_path is not None:
        from cmmerge.eval.plots import save_png_sweep

        save_png_sweep(out_rows, png_path)
    return out_rows
