"""Fine-tuning a sequence classifier (encoder or decoder), full or LoRA, from any starting checkpoint.

The starting point is what distinguishes the compared methods (θ_base, θ_cpt, θ_base + λ·τ_cpt,
TIES, a model already fine-tuned on English); the recipe is the same for all of them, so a
difference in the results is a difference of starting points.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import ConfigError, DataError
from cmmerge.fsutil import read_json, read_jsonl, write_json
from cmmerge.models import load_classifier, load_tokenizer
from cmmerge.train.common import LiveLogger, OptimParams, apply_lora, prepare_run, save_on_main, training_arguments

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
class MethodSpec:
    """One compared method: where fine-tuning starts and which prepared folder it trains on."""

    init: str
    train: str = "data/prepared/task"


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


def run_finetune(
    init: str | Path,
    train_dir: str | Path,
    labels_path: str | Path,
    params: FinetuneParams,
    seed: int,
    out_dir: str | Path,
    live_dir: str | Path,
    resume: bool = True,
) -> dict:
    """Fine-tune ``init`` on ``train_dir/train.jsonl`` (dev: ``train_dir/dev.jsonl``) into ``out_dir``.

    With ``params.optim.checkpoint_steps`` set, a killed run resumes from its last checkpoint when started
    again with the same params, seed and inputs (``resume=False`` always starts afresh).
    """
    import numpy as np
    from sklearn.metrics import f1_score
    from transformers import DataCollatorWithPadding, Trainer, set_seed

    train_dir = Path(train_dir)
    labels = read_json(labels_path)
    train_rows = _read_split(train_dir, "train")
    dev_rows = _read_split(train_dir, "dev") if (train_dir / "dev.jsonl").is_file() else []
    set_seed(seed)
    tokenizer = load_tokenizer(str(init))
    model = load_classifier(str(init), labels)
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
    fp_settings = {"params": dataclasses.asdict(params), "seed": seed, "labels": labels}
    work, resume_from = prepare_run(out_dir, fp_settings, [init, train_dir], resume)
    trainer = Trainer(
        model=model,
        args=training_arguments(work, params.optim, seed, eval_strategy="epoch" if dev_rows else "no"),
        data_collator=DataCollatorWithPadding(tokenizer),
        train_dataset=encode(tokenizer, train_rows, labels, params.max_length),
        eval_dataset=encode(tokenizer, dev_rows, labels, params.max_length) if dev_rows else None,
        compute_metrics=compute_metrics,
        callbacks=[LiveLogger(live_dir)],
    )
    result = trainer.train(resume_from_checkpoint=resume_from)
    summary = {
        "init": str(init),
        "seed": seed,
        "train_loss": result.training_loss,
        "steps": result.global_step,
        "world_size": trainer.args.world_size,
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
