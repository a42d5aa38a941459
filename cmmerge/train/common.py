"""Pieces shared by continued pre-training and fine-tuning: LoRA, Trainer arguments, DVCLive logging."""

from __future__ import annotations

import functools
import logging
import shutil
from collections import deque
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


# learning-rate schedules of transformers that need no further arguments (tests check each is one of its own)
Scheduler = Literal[
    "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup", "inverse_sqrt"
]


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
    lr_scheduler: Scheduler = "linear"
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
        # values passed on to transformers' TrainingArguments, which would accept some of them silently
        # (warmup_ratio 5 meant 5 warm-up steps) or fail with a traceback mid-stage
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(
                f"{where}.warmup_ratio must be a fraction of the steps in [0, 1), got {self.warmup_ratio}"
            )
        if self.weight_decay < 0:
            raise ConfigError(f"{where}.weight_decay must be >= 0, got {self.weight_decay}")
        for key in ("grad_accum", "logging_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be at least 1, got {getattr(self, key)}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(
                f"{where}.max_steps must be a positive number of steps, or -1 (epochs), got {self.max_steps}"
            )

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
        h.update(content_digest(item).encode())
    return h.hexdigest()


_DIGESTS: dict[tuple, str] = {}


# files that say how a model was made, not what it is: a model folder's content does not include them
PROVENANCE_FILES = frozenset({"merge_manifest.json", "train_summary.json"})


def content_digest(item: str | Path) -> str:
    """sha256 over the names and contents of a file or of every file in a folder.

    A ``.safetensors`` file counts by its tensors' names, dtypes, shapes and values, with -0.0 read as 0.0, and a
    folder's provenance files (:data:`PROVENANCE_FILES`) do not count: a model counts by what it computes, not by
    how it was written or made. Task arithmetic at λ = 0 writes θ_base + 0·τ, θ_base in value but with a -0.0
    turned into 0.0 (one entry of the embedded encoder's word embeddings), and a merge manifest beside it:
    training from it is training from θ_base, and its fingerprint now says so.

    Memoised per process under each file's size and modification time: a grid fingerprints the same
    88 MB checkpoint once per cell, and hashing it again took seconds each time."""
    import hashlib

    root = Path(item)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name not in PROVENANCE_FILES)
    else:
        files = [root]
    names = [str(p.relative_to(root) if root.is_dir() else p.name) for p in files]
    stats = [(n, st.st_size, st.st_mtime_ns) for n, st in zip(names, (p.stat() for p in files), strict=True)]
    key = (str(root.resolve()), tuple(stats))
    if key not in _DIGESTS:
        h = hashlib.sha256()
        for name, path in zip(names, files, strict=True):
            h.update(name.encode())
            if path.suffix == ".safetensors":
                _hash_tensors(path, h)
                continue
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _hash_tensors(path: Path, h) -> None:
    """Feed ``h`` the tensors of a safetensors file by name, in name order, as values (see :func:`content_digest`)."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        for name in sorted(f.keys()):
            tensor = f.get_tensor(name)
            if tensor.is_floating_point():
                tensor = tensor + 0.0  # IEEE: -0.0 + 0.0 is 0.0, every other value unchanged
            h.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            h.update(tensor.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())


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


# Bit-exact resume. The Trainer's rng_state.pth holds the global python, numpy and torch (and device) RNGs.
# Two more things decide what a run draws after a checkpoint, and both are handled here:
#
# 1. A seeded collator (DataCollatorForLanguageModeling(seed=...), the MLM masks) draws from its own
#    torch.Generator, which rng_state.pth does not hold: a resumed run re-created it from the seed and so
#    masked the batches after the checkpoint like the first batches of the run (measured: identical mask
#    hashes). Its state is saved next to rng_state.pth and restored before the first batch is collated.
#    The state to save is not the generator's state at saving time: accelerate's dataloader collates one
#    batch ahead, so by then the next, untrained batch has been masked already. It is the state the
#    generator had before the oldest batch collated but not yet trained (or its current state if there
#    is none, as at the end of an epoch), tracked by wrapping the training dataloader's collator.
#    Making the masks a function of (seed, step) instead would be exact by construction and need no
#    tracking, but it would change the masks, and so the weights, of every uninterrupted run (and of the
#    cached stages of runs made so far); saving the state leaves every uninterrupted run bit-identical.
# 2. A checkpoint due at the last step of an epoch was written before the end-of-epoch evaluation, which
#    draws from the global RNG (the evaluation dataloader's base seed) and from the collator (the
#    validation masks); a run resumed from it skipped that evaluation and so trained the next epoch with
#    other draws (measured: global torch RNG differs at the first step after resuming). Such a save is
#    made just after the evaluation instead (same step, same weights), so the checkpoint holds the RNG
#    states the next epoch starts from, and its log history holds that evaluation (CheckpointTiming, which
#    also writes no checkpoint at the last step of training: see there).
#
# Both assume the collator runs in the training process (training_arguments sets no dataloader workers).


def _collator_rng_file(checkpoint: str | Path, args) -> Path:
    """One file per process, like the Trainer's ``rng_state_{rank}.pth``: each rank has its own collator."""
    suffix = f"_{args.process_index}" if args.world_size > 1 else ""
    return Path(checkpoint) / f"collator_rng{suffix}.safetensors"


def _collator_generator(collator):
    """The collator's own torch generator, or None (unseeded collators draw from the global RNG, or not at all).

    transformers' DataCollatorForLanguageModeling creates it on its first batch, from its ``seed``.
    """
    import torch

    generator = getattr(collator, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


class _TrainCollation:
    """The training dataloader's collator, recording its generator's state before each batch it collates,
    until the Trainer takes that batch for training."""

    def __init__(self, collator) -> None:
        self.collator = collator
        self.pending: deque = deque()  # generator state (None: not created yet) before each untrained batch

    def __call__(self, examples):
        generator = _collator_generator(self.collator)
        self.pending.append(None if generator is None else generator.get_state())
        return self.collator(examples)

    def trained(self, batches: int) -> None:
        for _ in range(min(batches, len(self.pending))):
            self.pending.popleft()

    def resume_state(self):
        """The generator state the next training batch must be collated with (None: a fresh one, from the seed)."""
        if self.pending:
            return self.pending[0]
        generator = _collator_generator(self.collator)
        return None if generator is None else generator.get_state()


def save_collator_rng(state, checkpoint: str | Path, args) -> None:
    """Write a collator generator ``state`` into ``checkpoint`` (safetensors: resuming unpickles nothing)."""
    from safetensors.torch import save_file

    if state is not None:
        save_file({"state": state}, str(_collator_rng_file(checkpoint, args)))


def load_collator_rng(collator, checkpoint: str | Path, args) -> None:
    """Give the collator the generator state saved in ``checkpoint``.

    No file: the collator had drawn nothing by then (or draws no randomness), so the generator it creates
    from its seed on the next batch is the one the uninterrupted run had.
    """
    from safetensors.torch import load_file

    path = _collator_rng_file(checkpoint, args)
    if not path.is_file():
        return
    # create_rng builds the generator and records this process as its owner (else the collator rebuilds it
    # from the seed on the next batch); then the saved state replaces the seed's
    collator.create_rng("pt")
    collator.generator.set_state(load_file(str(path))["state"])


class CheckpointTiming(TrainerCallback):
    """When step checkpoints are written: one due at the last step of an epoch is moved to just after the
    end-of-epoch evaluation, so the saved RNG states include that evaluation's draws (point 2 above); none is
    written at the last step of training, after which the output is written and the checkpoints removed.

    A checkpoint of the last step would serve only a kill between it and the output, and a run resumed from
    it trains one step too many: the Trainer's loop takes a step before it checks ``max_steps`` (measured:
    "steps": 31 of 30, and another validation loss). Without it, such a run resumes from the checkpoint
    before and trains the rest again, exactly.
    """

    def __init__(self) -> None:
        self.pending = False

    def on_step_end(self, args, state, control, **kwargs):
        # runs after DefaultFlowCallback, which sets should_save (and should_training_stop at max_steps)
        if not control.should_save or args.save_strategy != "steps" or args.load_best_model_at_end:
            return control
        if control.should_training_stop:
            control.should_save = False
        elif float(state.epoch).is_integer():  # exactly a whole number at an epoch's last step
            control.should_save = False
            self.pending = True
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.pending:
            control.should_save = True
            self.pending = False
        return control


def make_trainer(**kwargs):
    """A transformers ``Trainer`` (same arguments) whose checkpoints resume bit-exactly: a run killed after a
    checkpoint and resumed ends with the weights of an uninterrupted run; uninterrupted runs are unchanged."""
    return _resumable_trainer_class()(**kwargs)


@functools.cache
def _resumable_trainer_class():
    # built on first use: importing transformers.Trainer is slow, and this module is also imported for its
    # params dataclasses alone
    from transformers import Trainer

    for hook in ("_save_rng_state", "get_batch_samples", "get_train_dataloader"):
        if not callable(getattr(Trainer, hook, None)):
            # an override below would silently never run, and resumed runs would drift again
            raise RuntimeError(f"transformers.Trainer has no {hook}: update cmmerge.train.common")

    class ResumableTrainer(Trainer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.train_collation: _TrainCollation | None = None
            self.add_callback(CheckpointTiming())

        def train(self, resume_from_checkpoint: str | None = None, **kwargs):
            # before the first batch: on a resume mid-epoch, the Trainer restores its own RNG states only
            # after collating the first batch (it skips the trained batches by index, collating none)
            if isinstance(resume_from_checkpoint, str):
                load_collator_rng(self.data_collator, resume_from_checkpoint, self.args)
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

        def get_train_dataloader(self):
            # only the training batches are tracked; evaluation shares the collator (and its generator)
            collator = self.data_collator
            self.train_collation = _TrainCollation(collator)
            self.data_collator = self.train_collation
            try:
                return super().get_train_dataloader()
            finally:
                self.data_collator = collator

        def get_batch_samples(self, epoch_iterator, num_batches, device):
            batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
            if self.train_collation is not None:
                self.train_collation.trained(len(batches))
            return batches, num_items

        def _save_rng_state(self, output_dir: str) -> None:
            # written with the other RNG states, before trainer_state.json marks the checkpoint complete
            super()._save_rng_state(output_dir)
            if self.train_collation is not None:
                save_collator_rng(self.train_collation.resume_state(), output_dir, self.args)

    return ResumableTrainer


def save_on_main(trainer, out_dir: str | Path, write, work: Path) -> None:
    """``write(tmp_folder)`` on the main process only, renamed into ``out_dir`` atomically; then the
    checkpoints, no longer needed, are removed."""
    from cmmerge.fsutil import atomic_dir

    if trainer.is_world_process_zero():
        with atomic_dir(out_dir) as tmp:
            write(Path(tmp))
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
