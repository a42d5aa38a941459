"""DVC stage ``finetune_en``: θ_en, the base fine-tuned on English task data (for τ_en and seq_ft)."""

from cmmerge.fsutil import curves_aside
from cmmerge.runner import stage_args, stage_main
from cmmerge.train.finetune import run_finetune
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    args = stage_args(
        __doc__, paths=("base", "train", "labels", "recipe", "out", "curves"), folders={"out": "train_summary.json"}
    )
    p = load_finetune_params(args.recipe)
    with curves_aside(args.curves) as live:  # replaces the previous curves only at the end
        run_finetune(args.base, args.train, args.labels, p, p.seeds[0], args.out, live)


if __name__ == "__main__":
    stage_main(main)
