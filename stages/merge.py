"""DVC stage ``merge@<name>``: one entry of the ``merges`` section of params.yaml → a merged checkpoint.

Each entry is a merge config in the format of ``cmmerge merge`` (mergekit-style: ``merge_method``,
``base_model``, ``models``, ``parameters``); dvc.yaml runs this script once per entry, passing the paths, and
lists only that entry as the stage's params, so changing one merge reruns that merge and what descends from
it. ``parameters.lambda: dev`` takes the λ with the best dev macro-F1 from the sweep's record. The output
carries a manifest of only its own method and parameters.
"""

from cmmerge.merge import run_merge
from cmmerge.params import PARAMS_FILE, load_yaml
from cmmerge.runner import stage_args, stage_main
from cmmerge.sections import merge_config, merge_entry, uses_dev
from cmmerge.selection import lambda_from_sweep


def main() -> None:
    # --sweep: the sweep's record, read only for lambda: dev; the engine checks --out itself
    args = stage_args(__doc__, "name", paths=("out", "sweep"))
    params = load_yaml(PARAMS_FILE)
    entry = merge_entry(params, args.name, PARAMS_FILE)
    lam = lambda_from_sweep(args.sweep, args.name) if uses_dev(entry) else None
    where = f"{PARAMS_FILE}: merges.{args.name}"
    run_merge(merge_config(entry, where, lam=lam).resolve(where), args.out)  # errors while merging name the entry


if __name__ == "__main__":
    stage_main(main)
