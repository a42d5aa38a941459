"""A tiny CPT or fine-tuning run from the command line, for tests that launch or kill real processes.

python run_tiny_training.py {cpt|finetune} BASE DATA OUT LIVE MAX_STEPS CHECKPOINT_STEPS [KILL_AT_STEP [PATIENCE]]

With KILL_AT_STEP the process SIGKILLs itself at the end of that optimiser step (``save:N``: just after the
checkpoint of step N is written; ``-``: no kill): a kill at a known point, whatever the speed of the machine
(a test that polls for a checkpoint and then kills races a fast machine). PATIENCE (cpt only) turns on CPT's
early stopping, at a constant learning rate high enough for the validation loss to stop improving.
"""

import json
import os
import signal
import sys
from pathlib import Path

from transformers.trainer_callback import CallbackHandler

from cmmerge.runner import run_main
from cmmerge.train.common import OptimParams
from cmmerge.train.cpt import CptParams, run_cpt
from cmmerge.train.finetune import FinetuneParams, run_finetune


def main() -> None:
    kind, base, data, out, live, steps, ckpt = sys.argv[1:8]
    if len(sys.argv) > 8 and sys.argv[8] != "-":
        _kill_at(sys.argv[8])
    patience = int(sys.argv[9]) if len(sys.argv) > 9 else 0
    optim = OptimParams(
        max_steps=int(steps),
        batch_size=4,
        learning_rate=1e-1 if patience else 3e-3,
        lr_scheduler="constant" if patience else "linear",
        # with early stopping, a logging window (11) that no epoch (18 steps) ends on: a run resumed from an epoch
        # checkpoint logs first an average over fewer steps than the window the killed run averaged
        logging_steps=11 if patience else 1,
        checkpoint_steps=int(ckpt),
        warmup_ratio=0.0,
    )
    if kind == "cpt":
        params = CptParams(max_length=32, early_stopping_patience=patience, optim=optim)
        summary = run_cpt(base, data, params, out, live)
    else:
        params = FinetuneParams(max_length=32, seeds=[1], optim=optim)
        summary = run_finetune(base, Path(data) / "task", Path(data) / "labels.json", params, 1, out, live)
    # every rank of a launched run prints its summary to the same pipe: one write of under PIPE_BUF bytes is
    # atomic there, where print's separate writes of text and newline interleaved between ranks
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), ("SUMMARY " + json.dumps(summary) + "\n").encode())


def _kill_at(when: str) -> None:
    event, step = ("on_save", int(when[5:])) if when.startswith("save:") else ("on_step_end", int(when))
    original = getattr(CallbackHandler, event)

    def hooked(self, args, state, control):
        if state.global_step == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, args, state, control)

    setattr(CallbackHandler, event, hooked)


if __name__ == "__main__":
    sys.exit(run_main(main))
