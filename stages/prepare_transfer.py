"""DVC stage ``prepare_transfer@<pair>``: a transfer pair's test set, labels mapped, every row kept.

It runs before ``prepare``, which checks its labels against the task's and removes its texts from the task's
training and dev data.
"""

import sys

from cmmerge.data.cleaning import CleaningParams
from cmmerge.data.loaders import DatasetSpec
from cmmerge.data.prepare import prepare_transfer
from cmmerge.params import from_dict, load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    pair = sys.argv[1]
    params = load_yaml("params.yaml")
    spec = from_dict(DatasetSpec, params["transfer"][pair], where=f"params.yaml: transfer.{pair}")
    cleaning = from_dict(CleaningParams, params["prepare"].get("cleaning", {}), where="params.yaml: prepare.cleaning")
    prepare_transfer(pair, spec, cleaning, f"data/transfer/{pair}", f"metrics/data_transfer/{pair}.json")


if __name__ == "__main__":
    stage_main(main)
