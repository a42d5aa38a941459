"""Continued pre-training (CPT) on code-mixed text: MLM for encoders, CLM for decoders.

Sentences are tokenised, concatenated and cut into full blocks of ``max_length`` tokens (packing),
so almost no compute goes to padding: every block is full except none (the remainder is dropped).
The result is saved with its pre-training head, in the same tensor layout as ``models/base``, so
the task vector τ_cpt = θ_cpt − θ_base is a tensor-by-tensor difference.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cmmerge.data.loaders import load_corpus
from cmmerge.errors import ConfigError
from cmmerge.fsutil import write_json
from cmmerge.models import family, lm_class, load_config, load_tokenizer
from cmmerge.train.common import (
    LiveLogger,
    OptimParams,
    apply_lora,
    make_trainer,
    prepare_run,
    save_on_main,
    training_arguments,
)
from cmmerge.train.stopping import best_evaluation, evaluations_since_best, stopped_by_patience

log = logging.getLogger(__name__)


@dataclass
class CptParams:
    """``cpt`` section of params.yaml."""

    objective: Literal["auto", "mlm", "clm"] = "auto"  # auto: MLM for encoders, CLM for decoders
    max_length: int = 64
    packing: bool = True
    mlm_probability: float = 0.15
    # compute the MLM head (hidden -> vocabulary logits) only at the masked ~15% of positions: the same
    # loss, at a fraction of the cost, since the vocabulary projection dominates small encoders
    masked_head_only: bool = True
    # train only the pre-training head for this many first steps: a head initialised at random (the
    # embedded default ships none) would otherwise send large, meaningless gradients into the encoder
    head_warmup_steps: int = 0
    # stop once the validation loss (scored after every epoch) has not improved for this many epochs, and keep
    # the weights of the best epoch; optim.epochs is then the most it may run. 0: run all epochs, keep the last
    early_stopping_patience: int = 0
    seed: int = 13
    optim: OptimParams = field(default_factory=OptimParams)

    def validate(self, where: str) -> None:
        if self.optim.from_dev:
            raise ConfigError(f"{where}.optim: learning_rate and epochs must be numbers ('dev' is for fine-tuning)")
        if self.early_stopping_patience < 0:
            raise ConfigError(f"{where}.early_stopping_patience must be >= 0, got {self.early_stopping_patience}")
        if self.head_warmup_steps < 0:
            raise ConfigError(f"{where}.head_warmup_steps must be >= 0, got {self.head_warmup_steps}")
        if self.max_length < 8:
            raise ConfigError(f"{where}.max_length must be at least 8, got {self.max_length}")
        if not 0.0 < self.mlm_probability < 1.0:
            raise ConfigError(f"{where}.mlm_probability must be in (0, 1), got {self.mlm_probability}")


def _blocks(tokenizer, lines: list[str], max_length: int, objective: str, packing: bool) -> list[list[int]]:
    """Token-id blocks: packed (concatenated, cut into full blocks) or one padded sentence per block."""
    if not packing:
        enc = tokenizer(lines, truncation=True, max_length=max_length)
        return [ids for ids in enc["input_ids"] if len(ids) > 2]
    enc = tokenizer(lines, add_special_tokens=False)
    if objective == "mlm":
        # [CLS] s1 [SEP] s2 [SEP] ... [SEP]: sentence boundaries stay visible to the model
        sep, cls = tokenizer.sep_token_id, tokenizer.cls_token_id
        body, stream = max_length - 2, []
        for ids in enc["input_ids"]:
            stream += [*ids, sep]
        return [[cls, *stream[i : i + body], sep] for i in range(0, len(stream) - body + 1, body)]
    eos = tokenizer.eos_token_id
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    stream = []
    for ids in enc["input_ids"]:
        stream += [*bos, *ids, eos]
    return [stream[i : i + max_length] for i in range(0, len(stream) - max_length + 1, max_length)]


@functools.cache
def _masks_training_batches_class():
    # built on first use, like common's Trainer class: importing transformers is slow
    from transformers import DataCollatorForLanguageModeling, default_data_collator

    class MasksTrainingBatches(DataCollatorForLanguageModeling):
        """Masks each training batch afresh, as its parent does, but passes batches that already carry
        ``labels`` (the validation blocks, masked once by :func:`masked_once`) through unchanged; so evaluating
        draws nothing from the generator, and the training masks do not depend on how often the run evaluates."""

        def torch_call(self, examples):
            if examples and isinstance(examples[0], dict) and "labels" in examples[0]:
                return default_data_collator(examples, return_tensors="pt")
            return super().torch_call(examples)

    return MasksTrainingBatches


def masked_once(blocks: list[list[int]], tokenizer, objective: str, params: CptParams):
    """The validation blocks with their labels: the MLM masks drawn once, from ``params.seed`` (CLM draws none).

    Every end-of-epoch evaluation then scores the same masked tokens, so an epoch's validation loss differs
    from the last one only by what the model learned. With masks drawn afresh at each evaluation, a step in the
    curve that decides early stopping mixed the model's change with the sampling noise of the masks (the
    real configs' 10-epoch CPT rose at epoch 8 and fell below its earlier best at epoch 9, and which of the
    two moved it could not be told).
    """
    import datasets
    from transformers import DataCollatorForLanguageModeling

    once = DataCollatorForLanguageModeling(
        tokenizer, mlm=objective == "mlm", mlm_probability=params.mlm_probability, seed=params.seed
    )
    batch = once([{"input_ids": ids} for ids in blocks])
    return datasets.Dataset.from_dict({name: tensor.tolist() for name, tensor in batch.items()})


def mlm_head(model):
    """The MLM head of an ``AutoModelForMaskedLM`` (BERT's ``cls``, XLM-R's ``lm_head``), or None if unclear."""
    prefix = getattr(model, "base_model_prefix", None)
    heads = [module for name, module in model.named_children() if name != prefix]
    return heads[0] if prefix and hasattr(model, prefix) and len(heads) == 1 else None


def masked_positions_loss(model, head, inputs: dict, num_items_in_batch=None):
    """MLM cross-entropy with the head applied only where ``labels != -100``; returns (loss, logits).

    Equal to the model's own loss, which projects every position onto the vocabulary and then
    ignores the unmasked ones; with ``num_items_in_batch`` (gradient accumulation) it is the
    summed loss over that many label tokens, as transformers' own loss functions compute it.
    """
    import torch.nn.functional as F

    labels = inputs["labels"]
    body = {k: v for k, v in inputs.items() if k != "labels"}
    hidden = model.base_model(**body).last_hidden_state
    selected = labels != -100
    logits = head(hidden[selected])
    target = labels[selected]
    if num_items_in_batch is None:
        return F.cross_entropy(logits.float(), target), logits
    total = F.cross_entropy(logits.float(), target, reduction="sum")
    return total / num_items_in_batch, logits


def use_masked_positions_loss(model) -> bool:
    """Make ``model``'s forward compute the MLM loss with the head only at masked positions.

    The override is on the instance, so the model stays a ``PreTrainedModel`` (``save_pretrained``,
    checkpoints) and DDP still calls it through its wrapper; it takes transformers' ``num_items_in_batch``
    so the Trainer normalises the loss over gradient accumulation and processes as for its own models.
    Returns False (and changes nothing) when the head cannot be found.
    """
    from transformers.modeling_outputs import MaskedLMOutput

    head = mlm_head(model)
    if head is None:
        return False
    original = type(model).forward

    def forward(input_ids=None, attention_mask=None, labels=None, num_items_in_batch=None, **kwargs):
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **kwargs}
        inputs = {k: v for k, v in inputs.items() if v is not None}
        if labels is None:
            return original(model, **inputs)
        loss, logits = masked_positions_loss(model, head, {**inputs, "labels": labels}, num_items_in_batch)
        return MaskedLMOutput(loss=loss, logits=logits)

    model.forward = forward
    return True


def _head_warmup_callback(model, steps: int):
    """Freeze the encoder/decoder body for the first ``steps`` optimiser steps, then train everything."""
    from transformers import TrainerCallback

    body = [p for p in model.base_model.parameters() if p.requires_grad]

    class HeadWarmup(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            # parameters without gradients are skipped by the optimiser (no update, no moment estimates)
            train_body = state.global_step >= steps
            for p in body:
                p.requires_grad_(train_body)

        def on_train_end(self, args, state, control, **kwargs):
            for p in body:
                p.requires_grad_(True)

    return HeadWarmup()


def _early_stopping_callback(patience: int):
    """transformers' ``EarlyStoppingCallback``, whose patience counter a resumed run recomputes from the
    evaluations in the state it resumed (:func:`cmmerge.train.stopping.evaluations_since_best`).

    The stock callback starts counting again from 0 on resume (its own state comes back only with
    ``restore_callback_states_from_checkpoint``, and a checkpoint written by a run that had itself resumed holds a
    count that had restarted): a run killed k evaluations after its best one then trained up to k epochs more than
    an uninterrupted run, and kept another epoch if one of those improved. Seen on the SentiMix CPT rerun: resumed
    one evaluation after its best, it began a 31st epoch that Bohra's uninterrupted run (same corpus and params,
    the same 30 validation losses) never ran.
    """
    from transformers import EarlyStoppingCallback

    class ResumedEarlyStopping(EarlyStoppingCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            losses = [h["eval_loss"] for h in state.log_history if "eval_loss" in h]
            self.early_stopping_patience_counter = evaluations_since_best(losses) if losses else 0

    return ResumedEarlyStopping(early_stopping_patience=patience)


def _stopped_at(state: dict, patience: int) -> int | None:
    """The step of a checkpoint (its ``trainer_state.json``, read) if the stopping rule had fired there (a run killed
    between its last evaluation and writing its output); else ``None``."""
    losses = [h["eval_loss"] for h in state.get("log_history", []) if "eval_loss" in h]
    return int(state["global_step"]) if stopped_by_patience(losses, patience) else None


def drop_unfinished_rows(live_dir: str | Path) -> None:
    """Ready a killed run's DVCLive folder for the run that resumes it: a row the killed run was writing (no line
    end) goes, so the resumed run's rows start on lines of their own; so does ``metrics.json`` (DVCLive writes it
    when a run ends), from which DVCLive would resume its step and write that stale step back at the end."""
    for tsv in _curve_files(live_dir):
        text = tsv.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            tsv.write_text(text[: text.rfind("\n") + 1], encoding="utf-8")
    (Path(live_dir) / "metrics.json").unlink(missing_ok=True)


def prune_curves(live_dir: str | Path, step: int) -> None:
    """Make a resumed run's DVCLive folder hold what an uninterrupted run logs: one row per step, up to ``step``.

    The killed run logged past its last checkpoint, and the resumed run logs those steps again. Of each step the
    first row is kept, the killed run's where it logged the step: the same values for every evaluation and every
    later training-loss row (training is deterministic), but the first training-loss row the resumed run logs
    averages only the steps since the checkpoint, where the killed run's (and an uninterrupted run's) averages the
    whole logging window. A first row after the checkpoint that no killed run logged stays such a partial average.
    """
    for tsv in _curve_files(live_dir):
        header, *rows = tsv.read_text(encoding="utf-8").splitlines()
        by_step: dict[int, str] = {}
        for row in filter(None, rows):
            at = int(float(row.split("\t")[0]))
            if at <= step:
                by_step.setdefault(at, row)
        tsv.write_text("\n".join([header, *(by_step[k] for k in sorted(by_step))]) + "\n", encoding="utf-8")


def _curve_files(live_dir: str | Path) -> list[Path]:
    root = Path(live_dir) / "plots" / "metrics"
    return sorted(root.rglob("*.tsv")) if root.is_dir() else []


def _write_curves_summary(live_dir: str | Path) -> None:
    """DVCLive's ``metrics.json`` (each curve's last value and the last step) from the curves, for a resumed run:
    what an uninterrupted run writes. DVCLive's own holds only what the resumed run logged (nothing, when its
    stopping rule had ended it before the kill)."""
    root = Path(live_dir) / "plots" / "metrics"
    latest: dict = {}
    last_step = 0
    for tsv in _curve_files(live_dir):
        rows = tsv.read_text(encoding="utf-8").splitlines()[1:]
        if rows:
            node = latest
            *parents, name = tsv.relative_to(root).with_suffix("").parts
            for key in parents:
                node = node.setdefault(key, {})
            step, value = rows[-1].split("\t")[:2]
            node[name] = float(value)
            last_step = max(last_step, int(float(step)))
    write_json(Path(live_dir) / "metrics.json", {**latest, "step": last_step})


def run_cpt(
    base_dir: str | Path,
    corpus_dir: str | Path,
    params: CptParams,
    out_dir: str | Path,
    live_dir: str | Path,
    resume: bool = True,
) -> dict:
    """Train ``base_dir`` on ``corpus_dir/train.txt`` (validation on ``valid.txt``) and save to ``out_dir``.

    With ``params.optim.checkpoint_steps`` set, a run that was killed resumes from its last checkpoint
    when started again with the same params and inputs (``resume=False`` always starts afresh).
    """
    import datasets
    from transformers import set_seed

    base_dir, corpus_dir = str(base_dir), Path(corpus_dir)
    config = load_config(base_dir)
    fam = family(config)
    objective = params.objective if params.objective != "auto" else ("mlm" if fam == "encoder" else "clm")
    if objective == "mlm" and fam == "decoder":
        raise ConfigError("cpt.objective is 'mlm' but the model is a causal decoder; use 'clm' or 'auto'")
    tokenizer = load_tokenizer(base_dir)
    set_seed(params.seed)
    model = lm_class("encoder" if objective == "mlm" else "decoder").from_pretrained(base_dir)

    train_lines = load_corpus(corpus_dir / "train.txt")
    valid_path = corpus_dir / "valid.txt"
    valid_lines = load_corpus(valid_path) if valid_path.is_file() and valid_path.stat().st_size else []
    train_blocks = _blocks(tokenizer, train_lines, params.max_length, objective, params.packing)
    if not train_blocks:
        raise ConfigError(f"cpt.max_length={params.max_length} is longer than the whole corpus; lower it or add text")
    valid_blocks = _blocks(tokenizer, valid_lines, params.max_length, objective, params.packing) if valid_lines else []
    n_tokens = sum(len(b) for b in train_blocks)
    log.info(
        "CPT (%s) on %d lines -> %d blocks of <= %d tokens (%d tokens, packing=%s)",
        objective,
        len(train_lines),
        len(train_blocks),
        params.max_length,
        n_tokens,
        params.packing,
    )

    wants_masked_head = objective == "mlm" and params.masked_head_only and not params.optim.lora.enabled
    if wants_masked_head and not use_masked_positions_loss(model):
        log.warning("cannot find the MLM head of %s: computing it at every position", type(model).__name__)
    if params.optim.lora.enabled:
        model = apply_lora(model, params.optim.lora, "CAUSAL_LM" if objective == "clm" else None)
    collator = _masks_training_batches_class()(
        tokenizer, mlm=objective == "mlm", mlm_probability=params.mlm_probability, seed=params.seed
    )
    callbacks = [LiveLogger(live_dir)]
    if params.head_warmup_steps and not params.optim.lora.enabled:
        callbacks.append(_head_warmup_callback(model, params.head_warmup_steps))
    stopping = {}
    if params.early_stopping_patience:
        if not valid_blocks:
            raise ConfigError(
                "cpt.early_stopping_patience needs a validation split, but the corpus has no valid.txt text: "
                "set corpus.valid_fraction > 0 or cpt.early_stopping_patience: 0"
            )
        # a checkpoint per epoch, so the best one can be restored at the end (and a killed run resumes)
        stopping = dict(save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="eval_loss")
        stopping["greater_is_better"] = False
        callbacks.append(_early_stopping_callback(params.early_stopping_patience))
    work, resume_from = prepare_run(out_dir, params, [base_dir, corpus_dir], resume)
    resumed = json.loads((Path(resume_from) / "trainer_state.json").read_text()) if resume_from else None
    # the step a resumed run's stopping rule had already ended it at
    trained_to = _stopped_at(resumed, params.early_stopping_patience) if stopping and resumed else None
    if trained_to is not None:
        # zero steps left: the Trainer ends the run as the uninterrupted one ended (the best epoch's weights loaded)
        log.info("the stopping rule had ended this run at step %d before it was killed: no further training",
                 trained_to)  # fmt: skip
        stopping["max_steps"] = trained_to
    args = training_arguments(
        work,
        params.optim,
        params.seed,
        eval_strategy="epoch" if valid_blocks else "no",
        prediction_loss_only=True,
        **stopping,
    )
    trainer = make_trainer(
        model=model,
        args=args,
        data_collator=collator,
        train_dataset=datasets.Dataset.from_dict({"input_ids": train_blocks}),
        eval_dataset=masked_once(valid_blocks, tokenizer, objective, params) if valid_blocks else None,
        callbacks=callbacks,
    )
    logs_curves = trainer.is_world_process_zero()  # only the main process logs curves
    if resumed is not None and logs_curves:
        drop_unfinished_rows(live_dir)
    result = trainer.train(resume_from_checkpoint=resume_from)
    if resumed is not None and logs_curves:
        prune_curves(live_dir, trainer.state.global_step)
        _write_curves_summary(live_dir)
    summary = {
        "objective": objective,
        # of this call: after a resume, the steps since the checkpoint (none when the rule had ended the run)
        "train_loss": result.training_loss if trained_to is None else None,
        "train_blocks": len(train_blocks),
        "train_tokens": n_tokens,
        "steps": result.global_step,
        "world_size": trainer.args.world_size,
        # what `accelerate launch` made of its config: NO, MULTI_GPU (DDP, gloo on CPU), FSDP, …
        "distributed_type": trainer.accelerator.distributed_type.value,
        "fsdp_wrapped": _fsdp_wrapped(trainer.model_wrapped),
    }
    evals = [h["eval_loss"] for h in trainer.state.log_history if "eval_loss" in h]
    if evals:  # every evaluation scored the same masked tokens (masked_once), so the curve is the model's alone
        # with early stopping the best epoch's weights are kept, so its loss is the model's
        kept = min(evals) if stopping else evals[-1]
        # the whole curve is in metrics/train/cpt (eval/loss)
        summary.update(valid_loss=kept, valid_perplexity=math.exp(min(kept, 50)))
        if stopping:
            summary.update(
                best_epoch=best_evaluation(evals) + 1,
                epochs_run=len(evals),
                stopped_early=stopped_by_patience(evals, params.early_stopping_patience),
            )
    adapter = model if params.optim.lora.enabled else None

    def write(tmp: Path) -> None:
        final = model
        if adapter is not None:
            adapter.save_pretrained(tmp / "adapter")  # a reference adapter for adapter arithmetic (AdaMergeX)
            final = adapter.merge_and_unload()  # τ_cpt is a full-weight difference either way
        final.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "cpt_summary.json", summary)

    save_on_main(trainer, out_dir, write, work)
    log.info(
        "CPT done: %s",
        ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items()),
    )
    return summary


def _fsdp_wrapped(model) -> bool:
    """True if the trained model was sharded by FSDP (version 1 wrapper or version 2 ``fully_shard``)."""
    from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel

    return any(isinstance(m, (FullyShardedDataParallel, FSDPModule)) for m in model.modules())
