"""DVC stage ``cpt``: continued pre-training of models/base on data/corpus into models/cpt."""

from cmmerge.fsutil import write_json
from cmmerge.params import load_section
from cmmerge.runner import stage_main
from cmmerge.train.cpt import CptParams, run_cpt


def main() -> None:
    summary = run_cpt("models/base", "data/corpus", load_section("cpt", CptParams), "models/cpt", "metrics/train/cpt")
    write_json("metrics/cpt.json", summary)


if __name__ == "__main__":
    stage_main(main)
