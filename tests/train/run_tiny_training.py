"""A tiny CPT or fine-tuning run from the command line, for tests that launch or kill real processes.

python run_tiny_training.py {cpt|finetune} BASE DATA OUT LIVE MAX_STEPS CHECKPOINT_STEPS
"""

import json
import sys
from pathlib import Path

from cmmerge.runner import run_main
from cmmerge.train.common import OptimParams
from cmmerge.train.cpt import CptParams, run_cpt
from cmmerge.train.finetune import FinetuneParams, run_finetune


def main() -> None:
    kind, base, data, out, live, steps, ckpt = sys.argv[1:8]
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
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    sys.exit(run_main(main))
