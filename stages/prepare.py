"""DVC stage ``prepare``: the task (and English) data into data/prepared, test split whole.

Training and dev data are de-leaked against the task test split and every transfer test set in data/transfer
(written by ``prepare_transfer@<pair>``, which runs first).
"""

from cmmerge.data.prepare import PrepareParams, prepare
from cmmerge.params import load_section, load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    prepare(
        load_section("prepare", PrepareParams),
        "data/prepared",
        "metrics/data.json",
        transfer_dir="data/transfer",
        pairs=list(load_yaml("params.yaml").get("transfer") or {}),
    )


if __name__ == "__main__":
    stage_main(main)
