"""A tiny CPT or fine-tuning run from the command line, for tests that launch or kill real processes.

python run_tiny_training.py {cpt|finetune} BASE DATA OUT LIVE MAX_STEPS CHECKPOINT_STEPS [KILL_AT_STEP]

With KILL_AT_STEP the process SIGKILLs itself at the end of that optimiser step: a kill at a known
point, whatever the speed of the machine (a test that polls for a checkpoint and then kills races a
fast machine).
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
    if len(sys.argv) > 8:
        _kill_at(int(sys.argv[8]))
    optim = OptimParams(
        max_steps=int(steps),
        batch_size=4,
        learning_rate=3e-3,
        logging_steps=1,
        checkpoint_steps=int(ckpt),
        warmup_ratio=0.0,
    )
    if kind == "cpt":
        summary = run_cpt(base, data, CptParams(max_length=32, optim=optim), out, live)
    else:
        params = FinetuneParams(max_length=32, seeds=[1], optim=optim)
        summary = run_finetune(base, Path(data) / "task", Path(data) / "labels.json", params, 1, out, live)
    # every rank of a launched run prints its summary to the same pipe: one write of under PIPE_BUF bytes is
    # atomic there, where print's separate writes of text and newline interleaved between ranks
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), ("SUMMARY " + json.dumps(summary) + "\n").encode())


def _kill_at(step: int) -> None:
    on_step_end = CallbackHandler.on_step_end

    def hooked(self, args, state, control):
        if state.global_step == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return on_step_end(self, args, state, control)

    CallbackHandler.on_step_end = hooked


if __name__ == "__main__":
    sys.exit(run_main(main))
