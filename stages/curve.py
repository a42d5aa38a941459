"""DVC stage ``curve``: test macro-F1 of the listed methods against the number of task training rows.

metrics/curve.json (DVC plot records), metrics/curve_summary.json (means, stds, differences to the reference per
size tested over seeds and items, every cell's predictions), metrics/png/curve.png. Finished cells are kept in
models/curve, so a killed run resumes at the first missing one. At the pipeline's own size the finetune stage's
models (``--finetuned``) are scored instead of being trained again.
"""

from cmmerge.data.prepare import PrepareParams
from cmmerge.eval.curve import CurveParams, run_curve
from cmmerge.eval.evaluate import EvaluateParams
from cmmerge.params import PARAMS_FILE, from_dict, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main
from cmmerge.train.finetune import MethodSpec
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    args = stage_args(
        __doc__, paths=("prepared-root", "transfer", "recipe", "work", "records", "summary", "png", "finetuned")
    )
    params = load_yaml(PARAMS_FILE)
    curve = load_section("curve", CurveParams)
    evaluate = load_section("evaluate", EvaluateParams)
    # only the methods on the curve are read
    methods = {
        m: from_dict(MethodSpec, params["methods"][m], where=f"{PARAMS_FILE}: methods.{m}")
        for m in curve.methods
        if m in params["methods"]
    }
    run_curve(
        curve,
        load_section("prepare", PrepareParams),
        methods,
        load_finetune_params(args.recipe),
        work_dir=args.work,
        records_path=args.records,
        summary_path=args.summary,
        eval_max_length=evaluate.max_length,
        eval_batch_size=evaluate.batch_size,
        transfer_dir=args.transfer,
        pairs=list(params.get("transfer") or {}),
        prepared_root=args.prepared_root,
        png_path=args.png,
        finetuned=args.finetuned,
    )


if __name__ == "__main__":
    stage_main(main)
