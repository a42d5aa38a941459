"""DVC stage ``sweep``: dev and test macro-F1 of one ``merges`` entry (``sweep.merge``), fine-tuned, for a grid of λ
→ metrics/sweep.json, from which ``parameters.lambda: dev`` takes the best dev λ."""

import argparse

from cmmerge.eval.evaluate import EvaluateParams
from cmmerge.eval.sweep import SweepParams, run_sweep
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_main
from cmmerge.sections import merge_entry
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, help="prepared task folder (train.jsonl and dev.jsonl)")
    parser.add_argument("--test", required=True, help="the test split scored at every λ")
    parser.add_argument("--labels", required=True, help="the label list (labels.json)")
    parser.add_argument("--recipe", required=True, help="the recipe record, read for finetune.optim values `dev`")
    parser.add_argument("--work", required=True, help="scratch folder for merged and fine-tuned checkpoints")
    parser.add_argument("--out", required=True, help="the sweep record (a DVC plot)")
    parser.add_argument("--png", help="the sweep figure")
    args = parser.parse_args()
    params = load_section("sweep", SweepParams)
    evaluate = load_section("evaluate", EvaluateParams)
    run_sweep(
        params.merge,
        merge_entry(load_yaml(PARAMS_FILE), params.merge, PARAMS_FILE),
        args.task,
        args.test,
        args.labels,
        params,
        load_finetune_params(args.recipe),
        work_dir=args.work,
        out_path=args.out,
        eval_max_length=evaluate.max_length,
        eval_batch_size=evaluate.batch_size,
        png_path=args.png,
    )


if __name__ == "__main__":
    stage_main(main)
