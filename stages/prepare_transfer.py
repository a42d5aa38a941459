"""DVC stage ``prepare_transfer@<pair>``: a transfer pair's test set, labels mapped, every row kept.

It runs before ``prepare``, which checks its labels against the task's and removes its texts from the task's
training and dev data.
"""

from cmmerge.data.cleaning import CleaningParams
from cmmerge.data.loaders import DatasetSpec
from cmmerge.data.prepare import prepare_transfer
from cmmerge.params import PARAMS_FILE, from_dict, load_yaml
from cmmerge.runner import stage_args, stage_main


def main() -> None:
    args = stage_args(__doc__, "pair", paths=("out", "metrics"), folders={"out": "test.jsonl"})
    params = load_yaml(PARAMS_FILE)
    spec = from_dict(DatasetSpec, params["transfer"][args.pair], where=f"{PARAMS_FILE}: transfer.{args.pair}")
    where = f"{PARAMS_FILE}: prepare.cleaning"
    cleaning = from_dict(CleaningParams, params["prepare"].get("cleaning", {}), where=where)
    prepare_transfer(args.pair, spec, cleaning, args.out, args.metrics)


if __name__ == "__main__":
    stage_main(main)
