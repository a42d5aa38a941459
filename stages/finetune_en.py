"""DVC stage ``finetune_en``: θ_en, the base fine-tuned on English task data (for τ_en and seq_ft)."""

from cmmerge.fsutil import curves_aside
from cmmerge.runner import stage_main
from cmmerge.train.finetune import run_finetune
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    p = load_finetune_params("metrics/recipe.json")
    with curves_aside("metrics/train/finetune_en") as live:  # replaces the previous curves only at the end
        run_finetune(
            "models/base",
            "data/prepared/english",
            "data/prepared/labels.json",
            p,
            p.seeds[0],
            "models/finetune_en",
            live,
        )


if __name__ == "__main__":
    stage_main(main)
