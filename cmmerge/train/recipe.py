"""The fine-tuning recipe, chosen on dev: a learning rate × epochs grid for the reference method.

A gain over a badly tuned reference is no gain, so the learning rate and the number of epochs that
every compared method uses are chosen for ``full_ft`` (fine-tuning θ_base on the task data) by its
dev macro-F1, never by a test score. ``finetune.optim.learning_rate: dev`` and/or ``epochs: dev``
take the chosen cell from the recipe stage's record (``metrics/recipe.json``); the grid is the
``recipe`` section of params.yaml. All methods then share one recipe: a difference in the results
remains a difference of starting points.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import ConfigError
from cmmerge.fsutil import read_json, read_jsonl, write_json
from cmmerge.params import load_section, require
from cmmerge.selection import best_on_dev
from cmmerge.train.finetune import FinetuneParams, curves_of
from cmmerge.train.kept import cell_fingerprint, cells_dir, keep, load_kept

log = logging.getLogger(__name__)


@dataclass
class RecipeParams:
    """``recipe`` section of params.yaml: the grid searched on dev."""

    learning_rates: list[float] = field(default_factory=lambda: [1e-4, 3e-4])
    epochs: list[float] = field(default_factory=lambda: [1.0, 2.0])
    seeds: list[int] = field(default_factory=lambda: [1])  # dev scores are averaged over these

    def validate(self, where: str) -> None:
        for key in ("learning_rates", "epochs", "seeds"):
            values = getattr(self, key)
            require(bool(values), f"{where}.{key} must list at least one value")
            require(len(set(values)) == len(values), f"{where}.{key} has duplicates: {values}")
        for key in ("learning_rates", "epochs"):
            bad = [v for v in getattr(self, key) if v <= 0]
            require(not bad, f"{where}.{key} must be positive, got {bad}")


def best_cell(cells: list[dict], where: str = "metrics/recipe.json") -> dict:
    """The grid cell with the best seed-mean dev macro-F1; on a tie, the first in grid order
    (:func:`cmmerge.selection.best_on_dev`).

    Grid order is learning rate, then epochs (both as listed), so a tie goes to the smaller budget
    when the lists are ascending.
    """
    return best_on_dev(cells, ("learning_rate", "epochs"), where, "rerun the recipe stage (`dvc repro recipe`)")


def resolve_recipe(params: FinetuneParams, recipe_path: str | Path) -> FinetuneParams:
    """``params`` with a ``dev`` learning rate / epochs replaced by the recipe stage's chosen cell."""
    optim = params.optim
    if not optim.from_dev:
        return params
    recipe_path = Path(recipe_path)
    if not recipe_path.is_file():
        raise ConfigError(
            f"finetune.optim takes its learning rate or epochs from dev ('dev'), but {recipe_path} does not exist: "
            "run the recipe stage first (`dvc repro recipe`) or give numbers"
        )
    chosen = read_json(recipe_path).get("chosen")
    if not isinstance(chosen, dict) or not {"learning_rate", "epochs"} <= set(chosen):
        raise ConfigError(f"{recipe_path} has no chosen cell: rerun the recipe stage (`dvc repro recipe`)")
    resolved = dataclasses.replace(
        optim,
        learning_rate=float(chosen["learning_rate"]) if optim.learning_rate == "dev" else optim.learning_rate,
        epochs=float(chosen["epochs"]) if optim.epochs == "dev" else optim.epochs,
    )
    log.info("recipe from %s: learning rate %g, %g epochs", recipe_path, resolved.learning_rate, resolved.epochs)
    return dataclasses.replace(params, optim=resolved)


def load_finetune_params(recipe_path: str | Path, path: str | Path = "params.yaml") -> FinetuneParams:
    """The ``finetune`` section with any ``dev`` value resolved from the recipe record."""
    return resolve_recipe(load_section("finetune", FinetuneParams, path), recipe_path)


def _write_chosen(
    init: str | Path, train_dir: Path, labels_path: str | Path, ft: FinetuneParams, cell_dir: Path, chosen_dir: Path
) -> None:
    """Copy the chosen cell's models (``cell_dir/seed<s>``, curves beside) to ``chosen_dir``, whole or not at all.

    A cell kept from an earlier run of the grid may have lost its models (the grid removes every other cell's, and
    DVC removes the stage's outputs before it runs again); such a seed is trained again here. Training is
    deterministic, so the output is the same whether the grid trained the cell in this run or an earlier one.
    """
    from cmmerge.fsutil import atomic_dir
    from cmmerge.train.finetune import run_finetune, trained_model, training_fingerprint

    for seed in ft.seeds:
        model = cell_dir / f"seed{seed}"
        fp = training_fingerprint(init, train_dir, labels_path, ft, seed)
        if trained_model([model], fp) is None:
            log.info("recipe: the chosen cell's seed %d was kept by an earlier run without its model: trained again",
                     seed)  # fmt: skip
            run_finetune(init, train_dir, labels_path, ft, seed, model, curves_of(model), resume=False)
    with atomic_dir(chosen_dir) as tmp:
        for seed in ft.seeds:
            for src in (cell_dir / f"seed{seed}", curves_of(cell_dir / f"seed{seed}")):
                if src.is_dir():
                    shutil.copytree(src, tmp / src.name)


def run_recipe(
    init: str | Path,
    train_dir: str | Path,
    labels_path: str | Path,
    params: RecipeParams,
    finetune: FinetuneParams,
    work_dir: str | Path,
    out_path: str | Path,
    grid_path: str | Path,
    eval_max_length: int,
    eval_batch_size: int,
    chosen_dir: str | Path | None = None,
) -> dict:
    """Fine-tune ``init`` on ``train_dir`` for every cell of the grid and seed; score ``train_dir/dev.jsonl``.

    The chosen cell's models stay in ``work_dir/<cell>/seed<s>`` for a stage that would train them again
    (``run_finetune(take_from=...)``, :mod:`cmmerge.train.finetune`); the other cells keep only their scores. With
    ``chosen_dir`` (the recipe stage's ``models/recipe_chosen``, a DVC output) they are also copied there, as
    ``seed<s>`` with their curves beside them, each one trained again where the grid kept only its score.

    Dev is scored like ``evaluate`` scores test (same classifier, ``eval_max_length``). Every other
    setting comes from ``finetune`` (its ``dev`` values are what this grid decides). Writes the chosen cell
    (``{"chosen": {...}, "dev_macro_f1": …, "grid_cells": n}``, a DVC metric) to ``out_path`` and every
    cell (a DVC plot) to ``grid_path``; returns both as ``{"chosen", "cells", …}``.
    """
    import numpy as np

    from cmmerge.eval.predict import macro_f1
    from cmmerge.train.finetune import run_finetune

    params.validate("recipe")
    train_dir, work_dir = Path(train_dir), Path(work_dir)
    dev_path = train_dir / "dev.jsonl"
    if not dev_path.is_file():
        raise ConfigError(f"{dev_path}: not found; the recipe is chosen on dev, so the task folder needs a dev split")
    labels = read_json(labels_path)
    dev_rows = read_jsonl(dev_path)
    cells, tags = [], []
    for lr in params.learning_rates:
        for epochs in params.epochs:
            tag = f"lr{lr:g}_ep{epochs:g}"
            optim = dataclasses.replace(finetune.optim, learning_rate=float(lr), epochs=float(epochs))
            ft = dataclasses.replace(finetune, optim=optim, seeds=list(params.seeds))
            scores, steps = {}, 0
            for seed in params.seeds:
                # each (cell, seed) is kept once scored, so a killed or multi-session grid resumes
                cell_path = cells_dir(work_dir) / tag / f"seed{seed}.json"
                settings = {"finetune": dataclasses.asdict(ft), "seed": seed}
                settings["eval"] = [eval_max_length, eval_batch_size]
                fp = cell_fingerprint(settings, init, train_dir, labels_path)
                kept = load_kept(cell_path, fp)
                if kept is None:
                    out = work_dir / tag / f"seed{seed}"
                    # resume=False: a grid cell is cheap, and a stale checkpoint of another cell must not leak in.
                    # The training curves lie beside the model (curves_of), for a stage that takes it.
                    live = curves_of(out)
                    summary = run_finetune(init, train_dir, labels_path, ft, seed, out, live, resume=False)
                    score = macro_f1(out, dev_rows, labels, eval_max_length, eval_batch_size)
                    kept = keep(cell_path, fp, {"dev_macro_f1": score, "steps": summary["steps"]})
                else:
                    log.info("recipe %s seed %d: kept (dev macro-F1 %.4f)", tag, seed, kept["dev_macro_f1"])
                scores[seed] = kept["dev_macro_f1"]
                steps = kept["steps"]
            values = list(scores.values())
            cell = {
                "learning_rate": float(lr),
                "epochs": float(epochs),
                "steps": steps,
                "dev_macro_f1": float(np.mean(values)),
                "dev_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                **{f"dev_seed{s}": v for s, v in scores.items()},  # flat: DVC plot records must not nest
            }
            log.info("recipe lr=%g, %g epochs (%d steps): dev macro-F1 %.4f", lr, epochs, steps, cell["dev_macro_f1"])
            cells.append(cell)
            tags.append(tag)
    chosen = best_cell(cells, str(out_path))
    # The chosen cell's models stay, every other cell's go: a stage that trains the very same model (the reference
    # method's seeds with the chosen recipe) takes them (cmmerge.train.finetune.run_finetune, take_from).
    keep_tag = tags[cells.index(chosen)]
    for folder in work_dir.iterdir() if work_dir.is_dir() else []:
        if folder.is_dir() and folder.name in set(tags) - {keep_tag}:
            shutil.rmtree(folder, ignore_errors=True)
    if chosen_dir is not None:
        optim = dataclasses.replace(finetune.optim, learning_rate=chosen["learning_rate"], epochs=chosen["epochs"])
        ft = dataclasses.replace(finetune, optim=optim, seeds=list(params.seeds))
        _write_chosen(init, train_dir, labels_path, ft, work_dir / keep_tag, Path(chosen_dir))
    record = {
        "chosen": {"learning_rate": chosen["learning_rate"], "epochs": chosen["epochs"], "steps": chosen["steps"]},
        "dev_macro_f1": chosen["dev_macro_f1"],
        "grid_cells": len(cells),
    }
    write_json(grid_path, cells)
    write_json(out_path, record)
    log.info("recipe chosen on dev: lr=%g, %g epochs", chosen["learning_rate"], chosen["epochs"])
    return {**record, "cells": cells}
