"""Fine-tuning a sequence classifier (encoder or decoder), full or LoRA, from any starting checkpoint.

The starting point is what distinguishes the compared methods (θ_base, θ_cpt, θ_base + λ·τ_cpt,
TIES, a model already fine-tuned on English); the recipe is the same for all of them, so a
difference in the results is a difference of starting points.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import ConfigError, DataError
from cmmerge.fsutil import read_json, read_jsonl, write_json
from cmmerge.models import load_classifier, load_tokenizer
from cmmerge.train.common import (
    LiveLogger,
    OptimParams,
    apply_lora,
    make_trainer,
    prepare_run,
    save_on_main,
    training_arguments,
)

log = logging.getLogger(__name__)


@dataclass
class FinetuneParams:
    """``finetune`` section of params.yaml (shared by every ``finetune@method`` and ``finetune_en``)."""

    max_length: int = 64
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    optim: OptimParams = field(default_factory=OptimParams)

    def validate(self, where: str) -> None:
        if not self.seeds:
            raise ConfigError(f"{where}.seeds must list at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"{where}.seeds has duplicates: {self.seeds}")
        if self.max_length < 4:
            raise ConfigError(f"{where}.max_length must be at least 4, got {self.max_length}")


@dataclass
class BlockSelection:
    """Transformer blocks (negative numbers count from the top) and optionally the embeddings."""

    blocks: list[int] = field(default_factory=list)
    embeddings: bool = False

    def validate(self, where: str) -> None:
        if not self.blocks and not self.embeddings:
            raise ConfigError(f"{where} selects nothing: give blocks (e.g. [0, 1, -1]) or embeddings: true")


@dataclass
class MethodSpec:
    """One compared method: where fine-tuning starts, which prepared folder it trains on, and optionally
    which blocks stay at their starting values: ``freeze`` keeps them out of training, ``revert`` trains
    everything and resets them afterwards (the post-hoc alternative of Bandarkar & Peng 2025)."""

    init: str
    train: str = "data/prepared/task"
    freeze: BlockSelection | None = None
    revert: BlockSelection | None = None
    # multiplies finetune.optim.epochs for this method: a compute-matched control, e.g. full_ft on the task
    # data with 2× the epochs takes as many optimiser steps as joint_ft on task + English data of equal size
    epoch_scale: float = 1.0

    def validate(self, where: str) -> None:
        if self.freeze is not None and self.revert is not None:
            raise ConfigError(f"{where}: give freeze or revert, not both (they are the two sides of one comparison)")
        if self.epoch_scale <= 0:
            raise ConfigError(f"{where}.epoch_scale must be positive, got {self.epoch_scale}")

    def scaled(self, params: FinetuneParams, where: str) -> FinetuneParams:
        """``params`` with this method's epochs (``epoch_scale`` × the shared recipe's)."""
        if self.epoch_scale == 1.0:
            return params
        optim = params.optim
        if optim.epochs == "dev" or optim.max_steps > 0:
            raise ConfigError(
                f"{where}.epoch_scale needs finetune.optim.epochs as a number (resolved from dev first) and no "
                f"max_steps; got epochs={optim.epochs!r}, max_steps={optim.max_steps}"
            )
        return dataclasses.replace(params, optim=dataclasses.replace(optim, epochs=optim.epochs * self.epoch_scale))


def selected_parameters(model, selection: BlockSelection) -> list[str]:
    """Names of the model's parameters in the selected blocks (and embeddings); never the task head."""
    from cmmerge.merge.layers import BlockLayout

    names = [n for n, _ in model.named_parameters()]
    layout = BlockLayout.detect(names)
    if layout.num_blocks == 0:
        raise ConfigError(f"cannot find transformer blocks in {type(model).__name__} to freeze or revert")
    wanted = set()
    for b in selection.blocks:
        index = layout.resolve(b)
        if index is None:
            raise ConfigError(f"block {b} does not exist: the model has {layout.num_blocks} blocks")
        wanted.add(index)
    return [
        n for n in names if layout.block_index(n) in wanted or (selection.embeddings and layout.part(n) == "embeddings")
    ]


def encode(tokenizer, rows: list[dict], labels: list[str] | None, max_length: int):
    """A ``datasets.Dataset`` of token ids (and label ids when ``labels`` is given)."""
    import datasets

    enc = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length)
    data = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    if labels is not None:
        index = {label: i for i, label in enumerate(labels)}
        data["labels"] = [index[r["label"]] for r in rows]
    return datasets.Dataset.from_dict(data)


def _read_split(folder: Path, split: str) -> list[dict]:
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found (is the training folder a prepared data folder?)")
    return read_jsonl(path)


def _fingerprint_settings(
    params: FinetuneParams, seed: int, labels: list, freeze: BlockSelection | None, revert: BlockSelection | None
) -> dict:
    # the seed trained, not the list of seeds the caller trains: one seed's run does not depend on the others, and
    # a grid trains a cell's seeds under a list of its own
    return {
        "params": {k: v for k, v in dataclasses.asdict(params).items() if k != "seeds"},
        "seed": seed,
        "labels": labels,
        "freeze": dataclasses.asdict(freeze) if freeze else None,
        "revert": dataclasses.asdict(revert) if revert else None,
    }


def training_fingerprint(
    init: str | Path,
    train_dir: str | Path,
    labels_path: str | Path,
    params: FinetuneParams,
    seed: int,
    freeze: BlockSelection | None = None,
    revert: BlockSelection | None = None,
) -> str:
    """What a :func:`run_finetune` run's model is a function of: its settings, the contents of its starting
    checkpoint and training folder, and the training code (:func:`cmmerge.train.kept.training_code`).

    Written into the model's ``train_summary.json`` (``fingerprint``), so another stage that would train the very
    same model (the learning curve at the pipeline's own size) can take it instead, and only when this matches.
    Folders count by content, not path: the curve's per-size copy of the prepared data is the same training data.
    """
    return _training_fingerprint(init, train_dir, read_json(labels_path), params, seed, freeze, revert)


def _training_fingerprint(
    init: str | Path,
    train_dir: str | Path,
    labels: list,
    params: FinetuneParams,
    seed: int,
    freeze: BlockSelection | None,
    revert: BlockSelection | None,
) -> str:
    from cmmerge.train.common import fingerprint
    from cmmerge.train.kept import training_code

    return fingerprint(_fingerprint_settings(params, seed, labels, freeze, revert), init, train_dir, *training_code())


def curves_of(model_dir: str | Path) -> Path:
    """Where a run that a later stage may take (``run_finetune(take_from=...)``) keeps its training curves: beside
    it."""
    model_dir = Path(model_dir)
    return model_dir.with_name(f"{model_dir.name}.curves")


def trained_model(candidates: list[str | Path], fingerprint: str) -> tuple[Path, dict] | None:
    """A finished model under ``candidates`` (model folders, or folders holding them at any depth) whose
    ``train_summary.json`` has this training ``fingerprint`` (:func:`training_fingerprint`), and that summary;
    ``None`` when there is none. Training is deterministic on the CPU, so such a model is what training again
    would write."""
    for folder in map(Path, candidates):
        for found in sorted(folder.rglob("train_summary.json")) if folder.is_dir() else []:
            summary = read_json(found)
            if isinstance(summary, dict) and summary.get("fingerprint") == fingerprint:
                return found.parent, summary
    return None


def run_finetune(
    init: str | Path,
    train_dir: str | Path,
    labels_path: str | Path,
    params: FinetuneParams,
    seed: int,
    out_dir: str | Path,
    live_dir: str | Path,
    resume: bool = True,
    freeze: BlockSelection | None = None,
    revert: BlockSelection | None = None,
    take_from: Sequence[str | Path] = (),
) -> dict:
    """Fine-tune ``init`` on ``train_dir/train.jsonl`` (dev: ``train_dir/dev.jsonl``) into ``out_dir``.

    With ``params.optim.checkpoint_steps`` set, a killed run resumes from its last checkpoint when started
    again with the same params, seed and inputs (``resume=False`` always starts afresh). ``freeze`` keeps
    the selected blocks at their starting values during training; ``revert`` resets them after it.

    ``take_from``: folders where another stage may have made this very training run already (the recipe stage's
    chosen models). When :func:`trained_model` finds it there, that model is copied to ``out_dir`` (atomically),
    its training curves (:func:`curves_of`) to ``live_dir``, and its summary returned: training is deterministic on
    the CPU, so it is what training again would write.
    """
    labels = read_json(labels_path)
    fp = _training_fingerprint(init, train_dir, labels, params, seed, freeze, revert)
    taken = trained_model(take_from, fp) if take_from else None
    if taken is not None:
        return _take(*taken, out_dir, live_dir, seed)
    return _train(init, train_dir, labels, params, seed, out_dir, live_dir, resume, freeze, revert, fp)


def _take(model: Path, summary: dict, out_dir: str | Path, live_dir: str | Path, seed: int) -> dict:
    import shutil

    from cmmerge.fsutil import atomic_dir

    with atomic_dir(out_dir) as tmp:
        shutil.copytree(model, tmp, dirs_exist_ok=True)
    if curves_of(model).is_dir():
        shutil.rmtree(live_dir, ignore_errors=True)
        shutil.copytree(curves_of(model), live_dir)
    log.info("seed %d: the same training run's model %s copied to %s, not trained again", seed, model, out_dir)
    return summary


def _train(
    init: str | Path,
    train_dir: str | Path,
    labels: list,
    params: FinetuneParams,
    seed: int,
    out_dir: str | Path,
    live_dir: str | Path,
    resume: bool,
    freeze: BlockSelection | None,
    revert: BlockSelection | None,
    fp: str,
) -> dict:
    """The training :func:`run_finetune` does when it takes no model: ``fp`` is its fingerprint, written into the
    model's ``train_summary.json``."""
    import numpy as np
    from sklearn.metrics import f1_score
    from transformers import DataCollatorWithPadding, set_seed

    train_dir = Path(train_dir)
    train_rows = _read_split(train_dir, "train")
    dev_rows = _read_split(train_dir, "dev") if (train_dir / "dev.jsonl").is_file() else []
    set_seed(seed)
    tokenizer = load_tokenizer(str(init))
    model = load_classifier(str(init), labels)
    kept: dict = {}
    if freeze is not None or revert is not None:
        if params.optim.lora.enabled:
            raise ConfigError("freeze and revert apply to full fine-tuning; turn finetune.optim.lora off for them")
        chosen = selected_parameters(model, freeze or revert)
        state = dict(model.named_parameters())
        for name in chosen:
            if freeze is not None:
                state[name].requires_grad_(False)
            else:
                kept[name] = state[name].detach().clone()
        log.info("%s %d parameter tensors", "freezing" if freeze is not None else "will revert", len(chosen))
    if params.optim.lora.enabled:
        model = apply_lora(model, params.optim.lora, "SEQ_CLS")

    def compute_metrics(pred) -> dict:
        y_pred = np.argmax(pred.predictions, axis=-1)
        return {"macro_f1": f1_score(pred.label_ids, y_pred, average="macro", labels=list(range(len(labels))))}

    log.info(
        "fine-tuning %s on %s (%d train, %d dev rows), seed %d",
        init,
        train_dir,
        len(train_rows),
        len(dev_rows),
        seed,
    )
    fp_settings = _fingerprint_settings(params, seed, labels, freeze, revert)
    work, resume_from = prepare_run(out_dir, fp_settings, [init, train_dir], resume)
    trainer = make_trainer(
        model=model,
        args=training_arguments(work, params.optim, seed, eval_strategy="epoch" if dev_rows else "no"),
        data_collator=DataCollatorWithPadding(tokenizer),
        train_dataset=encode(tokenizer, train_rows, labels, params.max_length),
        eval_dataset=encode(tokenizer, dev_rows, labels, params.max_length) if dev_rows else None,
        compute_metrics=compute_metrics,
        callbacks=[LiveLogger(live_dir)],
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    if kept:
        import torch

        state = dict(model.named_parameters())
        with torch.no_grad():
            moved = sum(float((state[n] - v).abs().max()) > 0 for n, v in kept.items())
            for name, value in kept.items():
                state[name].copy_(value)
        log.info("reverted %d of %d selected tensors that training had changed", moved, len(kept))
    summary = {
        "init": str(init),
        "seed": seed,
        "train_loss": result.training_loss,
        "steps": result.global_step,
        "world_size": trainer.args.world_size,
        "fingerprint": fp,
    }
    dev_f1 = [h["eval_macro_f1"] for h in trainer.state.log_history if "eval_macro_f1" in h]
    if dev_f1:
        summary["dev_macro_f1"] = dev_f1[-1]

    def write(tmp: Path) -> None:
        final = model
        if params.optim.lora.enabled:
            model.save_pretrained(tmp / "adapter")  # kept for adapter merging (AdaMergeX)
            final = model.merge_and_unload()
        final.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "train_summary.json", summary)

    save_on_main(trainer, out_dir, write, work)
    log.info(
        "fine-tuned: train loss %.4f%s",
        summary["train_loss"],
        f", dev macro-F1 {summary['dev_macro_f1']:.4f}" if dev_f1 else "",
    )
    return summary
