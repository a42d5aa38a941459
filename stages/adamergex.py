"""DVC stage ``adamergex``: the English task adapter as is, composed for code-mixed text (AdaMergeX), and
a code-mixed LoRA, each per seed; scored like every method; summary and table with `lora_en` as reference."""

import dataclasses

from cmmerge.eval.evaluate import EvaluateParams, evaluate_method
from cmmerge.eval.report import ReportParams, build_report
from cmmerge.params import load_section, load_yaml
from cmmerge.runner import stage_main
from cmmerge.train.adapter_transfer import VARIANTS, AdapterTransferParams, run_adapter_transfer


def main() -> None:
    run_adapter_transfer(
        "models/base",
        "data/prepared/english",
        "data/prepared/task",
        "data/corpus/train.txt",
        "data/prepared/labels.json",
        load_section("adamergex", AdapterTransferParams),
        "models/adamergex",
        lambda_record="metrics/adamergex/lambda_dev.json",
    )
    pairs = list(load_yaml("params.yaml").get("transfer") or {})
    for variant in VARIANTS:
        evaluate_method(
            variant,
            f"models/adamergex/{variant}",
            "data/prepared",
            "data/transfer",
            load_section("evaluate", EvaluateParams),
            metrics_path=f"metrics/adamergex/eval/{variant}.json",
            predictions_path=f"results/predictions/{variant}.json",
            confusion_path=f"metrics/adamergex/confusion/{variant}.json",
            pairs=pairs,
        )
    build_report(
        list(VARIANTS),
        "metrics/adamergex/eval",
        "results/predictions",
        dataclasses.replace(load_section("report", ReportParams), reference=VARIANTS[0]),
        "metrics/adamergex/summary.json",
        "metrics/adamergex/report.md",
        "data/prepared/task/train.jsonl",
    )


if __name__ == "__main__":
    stage_main(main)
