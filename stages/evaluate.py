"""DVC stage ``evaluate@<method>``: score every seed on the in-pair and transfer test sets."""

from cmmerge.eval.evaluate import EvaluateParams, evaluate_method
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main


def main() -> None:
    args = stage_args(__doc__, "method", paths=("model", "prepared", "transfer", "metrics", "predictions", "confusion"))
    evaluate_method(
        args.method,
        args.model,
        args.prepared,
        args.transfer,
        load_section("evaluate", EvaluateParams),
        metrics_path=args.metrics,
        predictions_path=args.predictions,
        confusion_path=args.confusion,
        pairs=list(load_yaml(PARAMS_FILE).get("transfer") or {}),
    )


if __name__ == "__main__":
    stage_main(main)
