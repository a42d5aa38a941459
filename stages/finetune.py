"""DVC stage ``finetune@<method>``: fine-tune the method's starting point once per seed."""

import sys

from cmmerge.fsutil import curves_aside
from cmmerge.params import from_dict, load_yaml
from cmmerge.runner import stage_main
from cmmerge.train.finetune import MethodSpec, run_finetune
from cmmerge.train.recipe import load_finetune_params


def main() -> None:
    method = sys.argv[1]
    spec = from_dict(MethodSpec, load_yaml("params.yaml")["methods"][method], where=f"params.yaml: methods.{method}")
    p = spec.scaled(load_finetune_params("metrics/recipe.json"), where=f"methods.{method}")
    for seed in p.seeds:
        # each seed's curves replace the previous run's only when that seed's training finishes
        with curves_aside(f"metrics/train/{method}/seed{seed}") as live:
            run_finetune(
                spec.init,
                spec.train,
                "data/prepared/labels.json",
                p,
                seed,
                f"models/finetune/{method}/seed{seed}",
                live,
                freeze=spec.freeze,
                revert=spec.revert,
            )


if __name__ == "__main__":
    stage_main(main)
