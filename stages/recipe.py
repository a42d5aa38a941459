"""DVC stage ``recipe``: full_ft's dev macro-F1 over a learning rate × epochs grid → metrics/recipe.json.

``finetune.optim.learning_rate: dev`` / ``epochs: dev`` then take the best cell (cmmerge.train.recipe). The chosen
cell's models go to ``--chosen``, where ``finetune@<method>`` takes the seeds it would train again.
"""

from cmmerge.eval.evaluate import EvaluateParams
from cmmerge.params import load_section
from cmmerge.runner import stage_args, stage_main
from cmmerge.train.finetune import FinetuneParams
from cmmerge.train.recipe import RecipeParams, run_recipe


def main() -> None:
    args = stage_args(
        __doc__, paths=("base", "task", "labels", "work", "out", "grid", "chosen"), folders={"chosen": "seed*"}
    )
    evaluate = load_section("evaluate", EvaluateParams)
    run_recipe(
        args.base,
        args.task,
        args.labels,
        load_section("recipe", RecipeParams),
        load_section("finetune", FinetuneParams),
        work_dir=args.work,
        out_path=args.out,
        grid_path=args.grid,
        eval_max_length=evaluate.max_length,
        eval_batch_size=evaluate.batch_size,
        chosen_dir=args.chosen,
    )


if __name__ == "__main__":
    stage_main(main)
