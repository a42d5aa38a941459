"""DVC stage ``evaluate@<method>``: score every seed on the in-pair and transfer test sets."""

import sys

from cmmerge.eval.evaluate import EvaluateParams, evaluate_method
from cmmerge.params import load_section, load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    method = sys.argv[1]
    evaluate_method(
        method,
        f"models/finetune/{method}",
        "data/prepared",
        "data/transfer",
        load_section("evaluate", EvaluateParams),
        metrics_path=f"metrics/eval/{method}.json",
        predictions_path=f"results/predictions/{method}.json",
        confusion_path=f"metrics/plots/confusion/{method}.json",
        pairs=list(load_yaml("params.yaml").get("transfer") or {}),
    )


if __name__ == "__main__":
    stage_main(main)
