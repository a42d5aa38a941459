"""DVC stage ``sweep``: dev and test macro-F1 of one ``merges`` entry (``sweep.merge``), fine-tuned, for a grid of λ
→ metrics/sweep.json, from which ``parameters.lambda: dev`` takes the best dev λ."""

from cmmerge.eval.evaluate import EvaluateParams
from cmmerge.eval.sweep import SweepParams, run_sweep
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main
from cmmerge.sections import merge_entry
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    # --task: train.jsonl and dev.jsonl; --work: scratch for merged and fine-tuned checkpoints and the kept cells
    # --take-from: the recipe stage's chosen models; a λ whose merge is θ_base in value (λ = 0 for task
    # arithmetic) fine-tunes into those very runs, taken instead of trained again
    args = stage_args(__doc__, paths=("task", "test", "labels", "recipe", "work", "out"), optional=("png", "take-from"))
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
        take_from=[args.take_from] if args.take_from else (),
    )


if __name__ == "__main__":
    stage_main(main)
