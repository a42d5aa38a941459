"""Pieces shared by continued pre-training and fine-tuning: LoRA, Trainer arguments, DVCLive logging."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainerCallback

from cmmerge.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LoraParams:
    """LoRA through peft; ``enabled: false`` trains all weights."""

    enabled: bool = False
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    # null: peft's defaults for the architecture (query/value for BERT, q_proj/v_proj for Llama)
    target_modules: list[str] | None = None

    def validate(self, where: str) -> None:
        if self.r < 1:
            raise ConfigError(f"{where}.r must be a positive integer, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class OptimParams:
    """Optimisation settings common to CPT and fine-tuning."""

    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    lr_scheduler: str = "linear"
    grad_accum: int = 1
    logging_steps: int = 10
    lora: LoraParams = field(default_factory=LoraParams)

    def validate(self, where: str) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"{where}.batch_size must be a positive integer, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise ConfigError(f"{where}.learning_rate must be positive, got {self.learning_rate}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError(f"{where}: set epochs > 0 or max_steps > 0")


def apply_lora(model, lora: LoraParams, task_type: str):
    """Wrap ``model`` in a peft LoRA model (``task_type``: SEQ_CLS, CAUSAL_LM or None for MLM)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type=task_type,
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"lora.target_modules: {str(exc).splitlines()[0]}") from None
    trainable, total = peft_model.get_nb_trainable_parameters()
    log.info("LoRA r=%d: %d of %d parameters trainable (%.2f%%)", lora.r, trainable, total, 100 * trainable / total)
    return peft_model


def training_arguments(output_dir: str | Path, optim: OptimParams, seed: int, **overrides):
    """Trainer arguments for a CPU/GPU-agnostic, deterministic run that logs only to DVCLive."""
    from transformers import TrainingArguments

    kwargs = dict(
        output_dir=str(output_dir),
        num_train_epochs=optim.epochs,
        max_steps=optim.max_steps,
        per_device_train_batch_size=optim.batch_size,
        per_device_eval_batch_size=max(optim.batch_size, 32),
        gradient_accumulation_steps=optim.grad_accum,
        learning_rate=optim.learning_rate,
        weight_decay=optim.weight_decay,
        warmup_steps=optim.warmup_ratio,  # transformers 5: a float < 1 is a fraction of the steps
        lr_scheduler_type=optim.lr_scheduler,
        logging_steps=optim.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=False,
    )
    kwargs.update(overrides)
    return TrainingArguments(**kwargs)


class LiveLogger(TrainerCallback):
    """Trainer callback logging losses, learning rate and dev scores to DVCLive against the optimiser step.

    transformers' own ``DVCLiveCallback`` counts log events as steps and logs run-time statistics;
    here the x axis is the trainer's ``global_step``, so curves of runs with different logging
    intervals line up in ``dvc plots diff``.
    """

    SKIP = ("runtime", "per_second", "flos", "epoch")

    def __init__(self, live_dir: str | Path):
        from dvclive import Live

        live_dir = Path(live_dir)
        if live_dir.exists():
            shutil.rmtree(live_dir)
        self.live = Live(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False, report=None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.live.step = state.global_step
        for key, value in logs.items():
            if not isinstance(value, int | float) or any(s in key for s in self.SKIP):
                continue
            if key.startswith("eval_"):
                name = "eval/" + key[5:]
            elif key.startswith("train_"):
                continue  # end-of-training averages, not curve points
            else:
                name = "train/" + key
            self.live.log_metric(name, float(value))

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.live.end()
