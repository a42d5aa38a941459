"""AdaMergeX as an experiment: a code-mixed task adapter composed from English adapters (Zhao et al. 2024).

Three ways to get a LoRA classifier for the code-mixed task, each once per seed, all from θ_base:

- ``lora_en``: the LoRA adapter fine-tuned on the English task data, applied as it is;
- ``lora_adamergex``: that adapter moved to code-mixed text by adapter arithmetic,
  ``ΔW = ΔW_task + λ (ΔW_ref_cm − ΔW_ref_en)``, where the two reference adapters are LoRA MLM
  adapters trained on English text and on code-mixed text (the same number of lines of each);
- ``lora_cm``: a LoRA adapter fine-tuned on the code-mixed task data directly (what labels buy).

The task adapters (``lora_en``, ``lora_cm``) share one recipe. It is given in ``optim``, or, with ``dev`` for
its learning rate and/or epochs, chosen on the code-mixed dev split over the ``recipe`` grid for ``lora_cm``
(the strongest of the three: the recipe is tuned for the method the composition must get close to, as the
main table's recipe is tuned for ``full_ft``). The grid runs through :func:`cmmerge.train.recipe.run_recipe`
with LoRA on, its cells kept like the recipe stage's, so a killed grid resumes.

The reference adapters are trained once (``reference.seed``) and shared by every seed, like the
CPT run of the main table. Each variant is written as ``<out>/<variant>/seed<k>``, a full classifier
(the adapter merged into θ_base) that ``evaluate`` scores like any fine-tuned method.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cmmerge.errors import ConfigError
from cmmerge.fsutil import atomic_dir, read_json, read_jsonl, write_json
from cmmerge.params import require
from cmmerge.selection import best_on_dev
from cmmerge.train.common import LoraParams, OptimParams
from cmmerge.train.finetune import FinetuneParams
from cmmerge.train.recipe import RecipeParams

log = logging.getLogger(__name__)

VARIANTS = ("lora_en", "lora_adamergex", "lora_cm")


def _task_optim() -> OptimParams:
    return OptimParams(epochs=3, batch_size=32, learning_rate=1e-3, warmup_ratio=0.1, logging_steps=10)


@dataclass
class ReferenceParams:
    """The two reference adapters: LoRA MLM on English text and on code-mixed text."""

    lines: int | None = None  # lines of each corpus (null: as many as the smaller one has)
    seed: int = 13  # the line sample, LoRA initialisation and masking
    # a checkpoint without an MLM head (the embedded encoder) gets a random one: train it alone first, for this many
    # steps on both corpora, then keep it frozen under both adapters, so that their difference is the language gap
    # and not two ways of adapting to a random head. 0: train the head with each adapter instead
    head_steps: int = 0
    max_length: int = 64
    optim: OptimParams = field(default_factory=_task_optim)

    def validate(self, where: str) -> None:
        require(self.lines is None or self.lines >= 10, f"{where}.lines must be at least 10, got {self.lines}")
        require(self.max_length >= 8, f"{where}.max_length must be at least 8, got {self.max_length}")
        require(self.head_steps >= 0, f"{where}.head_steps must be >= 0, got {self.head_steps}")


@dataclass
class AdapterTransferParams:
    """``adamergex`` section of params.yaml."""

    seeds: list[int] = field(default_factory=lambda: [1])  # task adapters (English and code-mixed)
    max_length: int = 64
    lora: LoraParams = field(default_factory=lambda: LoraParams(enabled=True))
    # the task adapters' recipe; "dev" for learning_rate and/or epochs: chosen over `recipe` on code-mixed dev
    optim: OptimParams = field(default_factory=_task_optim)
    recipe: RecipeParams | None = None  # the grid a "dev" value is chosen on (lora_cm's dev macro-F1)
    reference: ReferenceParams = field(default_factory=ReferenceParams)
    # parameters of the `adamergex` merge method (cmmerge.merge.adapters): lambda, mode (svd | concat), rank
    merge: dict[str, Any] = field(default_factory=lambda: {"lambda": 1.0, "mode": "svd"})
    # if given, λ is chosen from these by the seed-mean macro-F1 on the code-mixed dev split (merge.lambda is then
    # ignored): the composed adapter sees no code-mixed training labels, but its one hyperparameter is tuned on dev
    lambdas: list[float] | None = None

    def validate(self, where: str) -> None:
        require(bool(self.seeds) and len(set(self.seeds)) == len(self.seeds), f"{where}.seeds: distinct seeds")
        require(self.lora.enabled, f"{where}.lora.enabled must be true: AdaMergeX composes LoRA adapters")
        require(self.max_length >= 4, f"{where}.max_length must be at least 4, got {self.max_length}")
        require(not self.reference.optim.from_dev, f"{where}.reference.optim: give numbers, not 'dev'")
        require(
            not self.optim.from_dev or self.recipe is not None,
            f"{where}.optim takes 'dev' for its learning rate or epochs, so {where}.recipe must give the grid to "
            "choose them on (learning_rates, epochs, seeds), or give numbers",
        )
        require(
            self.recipe is None or self.optim.from_dev,
            f"{where}.recipe is set but {where}.optim gives numbers for both learning_rate and epochs, so the grid "
            "would decide nothing: set one of them to 'dev' or remove the recipe",
        )
        if self.lambdas is not None:
            require(bool(self.lambdas), f"{where}.lambdas must list at least one value (or be null)")
            require(len(set(self.lambdas)) == len(self.lambdas), f"{where}.lambdas has duplicates: {self.lambdas}")


def _sample_lines(lines: list[str], n: int, seed: int) -> list[str]:
    return lines if len(lines) <= n else random.Random(seed).sample(lines, n)


def _head_name(base: str | Path) -> str:
    """The name of the MLM head module of ``base`` (trained in full alongside the reference adapters)."""
    from cmmerge.models import lm_class
    from cmmerge.train.cpt import mlm_head

    model = lm_class("encoder").from_pretrained(str(base))
    head = mlm_head(model)
    names = [name for name, module in model.named_children() if module is head]
    if not names:
        raise ConfigError(f"{base}: cannot find the MLM head to train with the reference adapters")
    return names[0]


def train_references(
    base: str | Path, english_texts: list[str], code_mixed_texts: list[str], params: AdapterTransferParams, out: Path
) -> dict[str, Path]:
    """The English and the code-mixed reference adapters (LoRA MLM, the same number of lines each).

    Writes ``out/references.json``: the lines used of each corpus and how many each had.
    """
    from cmmerge.train.cpt import CptParams, run_cpt

    ref = params.reference
    n = min(len(english_texts), len(code_mixed_texts), ref.lines or 10**12)
    samples = {"en": _sample_lines(english_texts, n, ref.seed), "cm": _sample_lines(code_mixed_texts, n, ref.seed)}
    start, lora = str(base), params.lora
    if ref.head_steps:
        head_only = CptParams(
            objective="mlm",
            max_length=ref.max_length,
            seed=ref.seed,
            head_warmup_steps=ref.head_steps,  # as many as the run has: the body never trains
            optim=dataclasses.replace(ref.optim, max_steps=ref.head_steps, lora=LoraParams(enabled=False)),
        )
        corpus = _write_corpus(out / "corpus_head", samples["en"] + samples["cm"])
        run_cpt(base, corpus, head_only, out / "ref_head", out / "live_ref_head", resume=False)
        start = str(out / "ref_head")
    else:
        # the random MLM head of a checkpoint without one must learn too, or the adapters fit noise
        lora = dataclasses.replace(params.lora, modules_to_save=[_head_name(base)])
    cpt = CptParams(
        objective="mlm",
        max_length=ref.max_length,
        seed=ref.seed,
        optim=dataclasses.replace(ref.optim, lora=lora),
    )
    folders = {}
    for name, texts in samples.items():
        corpus = _write_corpus(out / f"corpus_{name}", texts)
        model_dir = out / f"ref_{name}"
        summary = run_cpt(start, corpus, cpt, model_dir, out / f"live_ref_{name}", resume=False)
        log.info("reference adapter %s: %d lines, train loss %.4f", name, n, summary["train_loss"])
        folders[name] = model_dir / "adapter"
    available = {"en": len(english_texts), "cm": len(code_mixed_texts)}
    write_json(out / "references.json", {"lines": n, "available": available, "head_steps": ref.head_steps})
    return folders


def _write_corpus(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def compose(task_adapter: Path, ref_en: Path, ref_cm: Path, merge: dict, out: Path) -> Path:
    """AdaMergeX: ``task + λ (ref_cm − ref_en)`` as a peft adapter folder at ``out``."""
    from cmmerge.merge import MergeConfig
    from cmmerge.merge.adapters import run_adapter_merge

    where = "params.yaml: adamergex.merge"
    cfg = MergeConfig.from_dict(
        {
            "merge_method": "adamergex",
            "models": [
                {"model": str(task_adapter), "name": "task_en", "parameters": {"role": "task"}},
                {"model": str(ref_en), "name": "ref_en", "parameters": {"role": "ref_src"}},
                {"model": str(ref_cm), "name": "ref_cm", "parameters": {"role": "ref_tgt"}},
            ],
            "parameters": merge,
        },
        where=where,
    )
    return run_adapter_merge(cfg.resolve(where), out)


def materialise(task_model: Path, task_adapter: Path, adapter: Path, out: Path) -> None:
    """The classifier ``task_model`` (θ_base + ΔW_task, merged) with ΔW_task swapped for ``adapter``'s ΔW, saved
    (with the tokenizer) at ``out``.

    It starts from the task model, not from θ_base: fine-tuning initialised weights the base checkpoint lacks
    (the classification head, and a pooler the embedded encoder ships without) and kept those not in the
    adapter; only the task run has them. peft computes both ΔW (its own scaling and rank patterns).
    """
    import torch
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForSequenceClassification

    from cmmerge.models import load_tokenizer

    model = PeftModel.from_pretrained(
        AutoModelForSequenceClassification.from_pretrained(str(task_model)), str(task_adapter), adapter_name="task"
    )
    model.load_adapter(str(adapter), adapter_name="composed")
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, LoraLayer) and "task" in layer.lora_A:
                base = layer.get_base_layer()
                base.weight -= layer.get_delta_weight("task")  # back to θ_base's weight for this module
    model.set_adapter("composed")
    merged = model.merge_and_unload(adapter_names=["composed"])
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp)
        load_tokenizer(str(task_model)).save_pretrained(tmp)
        shutil.copytree(adapter, tmp / "adapter")


def run_adapter_transfer(
    base: str | Path,
    english_dir: str | Path,
    task_dir: str | Path,
    corpus_path: str | Path,
    labels_path: str | Path,
    params: AdapterTransferParams,
    out_dir: str | Path,
    lambda_record: str | Path | None = None,
    eval_max_length: int = 128,
    eval_batch_size: int = 64,
    recipe_work: str | Path | None = None,
    recipe_record: str | Path | None = None,
    recipe_grid: str | Path | None = None,
) -> dict[str, Path]:
    """Train, compose and write every variant × seed to ``out_dir/<variant>/seed<k>``; return the variant folders.

    With ``params.lambdas``, every λ's dev scores and the chosen one go to ``lambda_record`` (default:
    ``out_dir/work/lambda_dev.json``); dev is scored as ``evaluate`` scores test (``eval_max_length``,
    ``eval_batch_size``). The task adapters' recipe goes to ``recipe_record`` (default ``out_dir/work/recipe.json``)
    and the grid it was chosen on, one entry per cell, to ``recipe_grid`` (an empty list when ``params.optim``
    gives numbers); the grid keeps its cells under ``recipe_work`` (default ``out_dir/work/recipe``).

    ``english_dir``/``task_dir`` are prepared folders (train.jsonl, dev.jsonl); the English reference text is the
    English training texts, the code-mixed one the lines of ``corpus_path`` (the CPT corpus).
    """
    from cmmerge.data.loaders import load_corpus
    from cmmerge.train.finetune import run_finetune

    params.validate("adamergex")
    out_dir, english_dir, task_dir = Path(out_dir), Path(english_dir), Path(task_dir)
    labels = read_json(labels_path)
    work = out_dir / "work"
    english_texts = [r["text"] for r in read_jsonl(english_dir / "train.jsonl")]
    ft = FinetuneParams(
        max_length=params.max_length,
        seeds=list(params.seeds),
        optim=dataclasses.replace(params.optim, lora=params.lora),
    )
    # the recipe first: its cells are kept, so a killed stage does not train them again
    recipe_work = Path(recipe_work) if recipe_work is not None else work / "recipe"
    ft = task_recipe(
        base,
        task_dir,
        labels_path,
        params,
        ft,
        recipe_work,
        Path(recipe_record) if recipe_record is not None else work / "recipe.json",
        Path(recipe_grid) if recipe_grid is not None else work / "recipe_grid.json",
        (eval_max_length, eval_batch_size),
    )
    refs = train_references(base, english_texts, load_corpus(Path(corpus_path)), params, work)
    for seed in params.seeds:
        for variant, data in (("lora_en", english_dir), ("lora_cm", task_dir)):
            target = out_dir / variant / f"seed{seed}"
            # lora_cm's seeds of the recipe grid's chosen cell are trained already: taken (same fingerprint)
            live = work / f"live_{variant}{seed}"
            run_finetune(base, data, labels_path, ft, seed, target, live, resume=False, take_from=[recipe_work])
    record = Path(lambda_record) if lambda_record is not None else work / "lambda_dev.json"
    scoring = (eval_max_length, eval_batch_size)
    lam = _choose_lambda(task_dir, labels, refs, params, out_dir, work, record, scoring) if params.lambdas else None
    merge = {**params.merge, "lambda": lam} if lam is not None else params.merge
    for seed in params.seeds:
        composed = work / f"adapter_adamergex{seed}"
        compose(out_dir / "lora_en" / f"seed{seed}" / "adapter", refs["en"], refs["cm"], merge, composed)
        task = out_dir / "lora_en" / f"seed{seed}"
        materialise(task, task / "adapter", composed, out_dir / "lora_adamergex" / f"seed{seed}")
    for corpus in ("corpus_en", "corpus_cm", "corpus_head"):
        shutil.rmtree(work / corpus, ignore_errors=True)
    return {v: out_dir / v for v in VARIANTS}


def task_recipe(
    base: str | Path,
    task_dir: Path,
    labels_path: str | Path,
    params: AdapterTransferParams,
    ft: FinetuneParams,
    work: Path,
    record: Path,
    grid: Path,
    scoring: tuple[int, int],
) -> FinetuneParams:
    """``ft`` with the task adapters' recipe: as ``params.optim`` gives it, or its ``dev`` values chosen for
    ``lora_cm`` (LoRA on θ_base, trained on the code-mixed task) by code-mixed dev macro-F1 over ``params.recipe``.

    Writes ``record`` (``{"chosen": {"learning_rate", "epochs", …}, "grid_cells": n, …}``, ``grid_cells`` 0 when
    the recipe was given) and ``grid`` (the cells).
    """
    from cmmerge.train.recipe import resolve_recipe, run_recipe

    if params.recipe is None:
        chosen = {"learning_rate": ft.optim.learning_rate, "epochs": ft.optim.epochs}
        write_json(record, {"chosen": chosen, "grid_cells": 0})
        write_json(grid, [])
        return ft
    run_recipe(base, task_dir, labels_path, params.recipe, ft, work, record, grid, *scoring)
    return resolve_recipe(ft, record)


def _choose_lambda(
    task_dir: Path,
    labels: list[str],
    refs: dict[str, Path],
    params: AdapterTransferParams,
    out_dir: Path,
    work: Path,
    record: Path,
    scoring: tuple[int, int],
) -> float:
    """The λ of ``params.lambdas`` with the best seed-mean dev macro-F1 (first on a tie); writes every λ's
    dev scores and the choice to ``record``."""
    import numpy as np

    from cmmerge.eval.predict import macro_f1

    dev = read_jsonl(task_dir / "dev.jsonl")
    scores: dict[str, dict[str, float]] = {}
    for lam in params.lambdas:
        per_seed = {}
        for seed in params.seeds:
            adapter, model = work / "lambda_adapter", work / "lambda_model"
            compose(out_dir / "lora_en" / f"seed{seed}" / "adapter", refs["en"], refs["cm"],
                    {**params.merge, "lambda": lam}, adapter)  # fmt: skip
            task = out_dir / "lora_en" / f"seed{seed}"
            materialise(task, task / "adapter", adapter, model)
            per_seed[str(seed)] = macro_f1(model, dev, labels, *scoring)  # evaluate's length and batch size
            shutil.rmtree(adapter, ignore_errors=True)
            shutil.rmtree(model, ignore_errors=True)
        scores[f"{lam:g}"] = {"mean": float(np.mean(list(per_seed.values()))), **per_seed}
        log.info("AdaMergeX λ=%g: dev macro-F1 %.4f", lam, scores[f"{lam:g}"]["mean"])
    candidates = [{"lambda": v, "dev_macro_f1": scores[f"{v:g}"]["mean"]} for v in params.lambdas]
    chosen = best_on_dev(candidates, ("lambda",), str(record), "rerun the adamergex stage")["lambda"]
    write_json(record, {"chosen": chosen, "dev_macro_f1": scores})
    return float(chosen)
