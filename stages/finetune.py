"""DVC stage ``finetune@<method>``: fine-tune the method's starting point once per seed.

A seed whose very training run the recipe stage made already (``--take-from``: its chosen cell's models, the
reference method's seeds with the chosen recipe) is copied, not trained again.
"""

from pathlib import Path

from cmmerge.fsutil import curves_aside
from cmmerge.params import PARAMS_FILE, from_dict, load_yaml
from cmmerge.runner import stage_args, stage_main
from cmmerge.train.finetune import MethodSpec, run_finetune
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    args = stage_args(
        __doc__,
        "method",
        paths=("labels", "recipe", "take-from", "out", "curves"),
        folders={"out": "seed*"},
    )
    where = f"{PARAMS_FILE}: methods.{args.method}"
    spec = from_dict(MethodSpec, load_yaml(PARAMS_FILE)["methods"][args.method], where=where)
    p = spec.scaled(load_finetune_params(args.recipe), where=f"methods.{args.method}")
    for seed in p.seeds:
        # each seed's curves replace the previous run's only when that seed's training finishes
        with curves_aside(Path(args.curves) / f"seed{seed}") as live:
            run_finetune(
                spec.init,
                spec.train,
                args.labels,
                p,
                seed,
                Path(args.out) / f"seed{seed}",
                live,
                freeze=spec.freeze,
                revert=spec.revert,
                take_from=[args.take_from],
            )


if __name__ == "__main__":
    stage_main(main)
