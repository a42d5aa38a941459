"""Pieces shared by continued pre-training and fine-tuning: LoRA, Trainer arguments, DVCLive logging."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
    # modules trained in full and saved with the adapter, e.g. [cls] for a BERT MLM head that starts random
    modules_to_save: list[str] | None = None

    def validate(self, where: str) -> None:
        if self.r < 1:
            raise ConfigError(f"{where}.r must be a positive integer, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout must be in [0, 1), got {self.dropout}")


@dataclass
class OptimParams:
    """Optimisation settings common to CPT and fine-tuning."""

    # fine-tuning may give "dev" for epochs and learning_rate: the cell of the recipe grid with the best
    # dev macro-F1 (stages/recipe.py, cmmerge.train.recipe); CPT takes numbers only
    epochs: float | Literal["dev"] = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 32
    learning_rate: float | Literal["dev"] = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    lr_scheduler: str = "linear"
    grad_accum: int = 1
    logging_steps: int = 10
    # save a resumable checkpoint (weights, optimiser, scheduler, RNG) every N steps; 0: never. A stage
    # killed mid-run resumes from the last one on the next `dvc repro` if its params and inputs are the same
    checkpoint_steps: int = 0
    lora: LoraParams = field(default_factory=LoraParams)

    def validate(self, where: str) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"{where}.batch_size must be a positive integer, got {self.batch_size}")
        if self.learning_rate != "dev" and self.learning_rate <= 0:
            raise ConfigError(f"{where}.learning_rate must be positive, got {self.learning_rate}")
        if self.epochs != "dev" and self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError(f"{where}: set epochs > 0 or max_steps > 0")
        if self.checkpoint_steps < 0:
            raise ConfigError(f"{where}.checkpoint_steps must be >= 0, got {self.checkpoint_steps}")

    @property
    def from_dev(self) -> bool:
        """True if the learning rate or the epochs are to be chosen on dev (the recipe stage)."""
        return "dev" in (self.learning_rate, self.epochs)


def apply_lora(model, lora: LoraParams, task_type: str):
    """Wrap ``model`` in a peft LoRA model (``task_type``: SEQ_CLS, CAUSAL_LM or None for MLM)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        modules_to_save=lora.modules_to_save,
        task_type=task_type,
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:
        raise ConfigError(f"lora.target_modules: {str(exc).splitlines()[0]}") from None
    trainable, total = peft_model.get_nb_trainable_parameters()
    log.info("LoRA r=%d: %d of %d parameters trainable (%.2f%%)", lora.r, trainable, total, 100 * trainable / total)
    return peft_model


def cpu_only() -> bool:
    """True on a machine without an accelerator: training (distributed too, with gloo) runs on CPU processes."""
    import torch

    return not (torch.cuda.is_available() or torch.backends.mps.is_available())


def training_arguments(output_dir: str | Path, optim: OptimParams, seed: int, **overrides):
    """Trainer arguments for a CPU/GPU-agnostic, deterministic run that logs only to DVCLive."""
    from transformers import TrainingArguments

    if optim.from_dev:
        raise ConfigError(
            "the learning rate or epochs are 'dev' but were not resolved from the recipe stage's dev grid "
            "(cmmerge.train.recipe.resolve_recipe); give numbers or run through the pipeline"
        )
    kwargs = dict(
        use_cpu=cpu_only(),
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
        save_strategy="steps" if optim.checkpoint_steps else "no",
        save_steps=optim.checkpoint_steps or 500,
        save_total_limit=1,
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
        self.live_dir = Path(live_dir)
        self.live = None

    def on_train_begin(self, args, state, control, **kwargs):
        # only the main process logs (under `accelerate launch` every rank runs this callback)
        if state.is_world_process_zero and self.live is None:
            from dvclive import Live

            resuming = state.global_step > 0
            if self.live_dir.exists() and not resuming:
                shutil.rmtree(self.live_dir)
            self.live = Live(dir=str(self.live_dir), resume=resuming, save_dvc_exp=False, dvcyaml=False, report=None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.live is None or not logs:
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
        if self.live is not None:
            self.live.end()


def fingerprint(params, *inputs: str | Path) -> str:
    """A hash of a run's params and the contents of its input files/folders: a checkpoint is resumed only
    by a run with the same fingerprint, never by one whose params or data changed in between."""
    import dataclasses
    import hashlib
    import json

    settings = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else params
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for item in inputs:
        root = Path(item)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            h.update(str(path.relative_to(root) if root.is_dir() else path.name).encode())
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def checkpoint_dir(out_dir: str | Path) -> Path:
    """Where a run writing ``out_dir`` keeps its resumable checkpoints: a hidden sibling folder, which DVC
    does not track and so does not delete when it reruns the stage."""
    out = Path(out_dir)
    return out.parent / f".{out.name}.checkpoints"


def _complete(checkpoint: Path) -> bool:
    """A checkpoint is complete once the Trainer wrote its state, the last file it saves."""
    import json

    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def _checkpoints(work: Path) -> list[Path]:
    found = [p for p in work.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def reset_checkpoints(work: Path, fp: str, resume: bool) -> None:
    """Keep ``work``'s checkpoints only if they belong to a run with fingerprint ``fp`` (and ``resume``);
    drop a checkpoint the killed run was still writing."""
    marker = work / "fingerprint"
    if work.exists() and (not resume or not marker.is_file() or marker.read_text().strip() != fp):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    marker.write_text(fp + "\n")
    for checkpoint in _checkpoints(work):
        if not _complete(checkpoint):
            log.warning("dropping incomplete checkpoint %s", checkpoint)
            shutil.rmtree(checkpoint)


def latest_checkpoint(work: Path) -> str | None:
    complete = [p for p in _checkpoints(work) if _complete(p)]
    if not complete:
        return None
    log.info("resuming from %s", complete[-1])
    return str(complete[-1])


def prepare_run(out_dir: str | Path, params, inputs: list[str | Path], resume: bool) -> tuple[Path, str | None]:
    """The checkpoint folder of a run and the checkpoint to resume from (None: start afresh).

    Under ``accelerate launch`` only the main process may clear stale checkpoints; the others wait.
    """
    from accelerate import PartialState

    state = PartialState(cpu=cpu_only())
    work = checkpoint_dir(out_dir)
    if state.is_main_process:
        reset_checkpoints(work, fingerprint(params, *inputs), resume)
    state.wait_for_everyone()
    return work, latest_checkpoint(work)


def save_on_main(trainer, out_dir: str | Path, write, work: Path) -> None:
    """``write(tmp_folder)`` on the main process only, renamed into ``out_dir`` atomically; then the
    checkpoints, no longer needed, are removed."""
    from cmmerge.fsutil import atomic_dir

    if trainer.is_world_process_zero():
        with atomic_dir(out_dir) as tmp:
            write(Path(tmp))
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
