"""DVC stage ``adamergex``: the English task adapter as is, composed for code-mixed text (AdaMergeX), and
a code-mixed LoRA, each per seed; scored like every method; summary and table with `lora_en` as reference.

The task adapters' recipe is given in params or chosen on code-mixed dev (``--work`` keeps the grid's cells,
``--recipe`` and ``--recipe-grid`` record it)."""

import dataclasses
from pathlib import Path

from cmmerge.eval.evaluate import EvaluateParams, evaluate_method
from cmmerge.eval.report import ReportParams, build_report
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main
from cmmerge.train.adapter_transfer import VARIANTS, AdapterTransferParams, run_adapter_transfer


def main() -> None:
    args = stage_args(
        __doc__,
        paths=("base", "english", "task", "corpus", "labels", "prepared", "transfer", "out", "work", "recipe",
               "recipe-grid", "lambda-record", "evals", "predictions", "confusion", "summary", "report"),
        folders={"out": "lora_en"},
    )  # fmt: skip
    evaluate = load_section("evaluate", EvaluateParams)
    run_adapter_transfer(
        args.base,
        args.english,
        args.task,
        args.corpus,
        args.labels,
        load_section("adamergex", AdapterTransferParams),
        args.out,
        lambda_record=args.lambda_record,
        eval_max_length=evaluate.max_length,
        eval_batch_size=evaluate.batch_size,
        recipe_work=args.work,
        recipe_record=args.recipe,
        recipe_grid=args.recipe_grid,
    )
    pairs = list(load_yaml(PARAMS_FILE).get("transfer") or {})
    for variant in VARIANTS:
        evaluate_method(
            variant,
            Path(args.out) / variant,
            args.prepared,
            args.transfer,
            evaluate,
            metrics_path=Path(args.evals) / f"{variant}.json",
            predictions_path=Path(args.predictions) / f"{variant}.json",
            confusion_path=Path(args.confusion) / f"{variant}.json",
            pairs=pairs,
        )
    build_report(
        list(VARIANTS),
        args.evals,
        args.predictions,
        dataclasses.replace(load_section("report", ReportParams), reference=VARIANTS[0]),
        args.summary,
        args.report,
        Path(args.task) / "train.jsonl",
    )


if __name__ == "__main__":
    stage_main(main)
