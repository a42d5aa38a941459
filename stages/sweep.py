"""DVC stage ``sweep``: dev and test macro-F1 of θ_base + λ·τ_cpt (fine-tuned) for a grid of λ → metrics/sweep.json."""

from cmmerge.eval.evaluate import EvaluateParams
from cmmerge.eval.sweep import SweepParams, run_sweep
from cmmerge.params import load_section
from cmmerge.runner import stage_main
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    run_sweep(
        "models/base",
        "models/cpt",
        "data/prepared/task",
        "data/prepared/task/test.jsonl",
        "data/prepared/labels.json",
        load_section("sweep", SweepParams),
        load_finetune_params("metrics/recipe.json"),
        work_dir="models/sweep",
        out_path="metrics/sweep.json",
        eval_batch_size=load_section("evaluate", EvaluateParams).batch_size,
        png_path="metrics/png/sweep.png",
    )


if __name__ == "__main__":
    stage_main(main)
