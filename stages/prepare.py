"""DVC stage ``prepare``: the task (and English) data into data/prepared, test split whole.

Training and dev data are de-leaked against the task test split and every transfer test set in data/transfer
(written by ``prepare_transfer@<pair>``, which runs first).
"""

from cmmerge.data.prepare import PrepareParams, prepare
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main


def main() -> None:
    args = stage_args(__doc__, paths=("out", "metrics", "transfer"), folders={"out": "labels.json"})
    prepare(
        load_section("prepare", PrepareParams),
        args.out,
        args.metrics,
        transfer_dir=args.transfer,
        pairs=list(load_yaml(PARAMS_FILE).get("transfer") or {}),
    )


if __name__ == "__main__":
    stage_main(main)
