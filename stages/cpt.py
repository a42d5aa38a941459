"""DVC stage ``cpt``: continued pre-training of models/base on data/corpus into models/cpt."""

from cmmerge.fsutil import curves_aside, write_json
from cmmerge.params import load_section
from cmmerge.runner import stage_args, stage_main
from cmmerge.train.cpt import CptParams, run_cpt


def main() -> None:
    args = stage_args(
        __doc__, paths=("base", "corpus", "out", "curves", "metrics"), folders={"out": "cpt_summary.json"}
    )
    params = load_section("cpt", CptParams)
    # the curves go to a sibling folder that replaces the previous run's only when the run finishes
    with curves_aside(args.curves) as live:
        summary = run_cpt(args.base, args.corpus, params, args.out, live)
    write_json(args.metrics, summary)


if __name__ == "__main__":
    stage_main(main)
