"""DVC stage ``cpt``: continued pre-training of models/base on data/corpus into models/cpt."""

from cmmerge.fsutil import curves_aside, write_json
from cmmerge.params import load_section
from cmmerge.runner import stage_main
from cmmerge.train.cpt import CptParams, run_cpt


def main() -> None:
    params = load_section("cpt", CptParams)
    # the curves go to a sibling folder that replaces metrics/train/cpt only when the run finishes
    with curves_aside("metrics/train/cpt") as live:
        summary = run_cpt("models/base", "data/corpus", params, "models/cpt", live)
    write_json("metrics/cpt.json", summary)


if __name__ == "__main__":
    stage_main(main)
