"""DVC stage ``report``: metrics/summary.json and the Markdown results table of all methods."""

from cmmerge.eval.report import ReportParams, build_report
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main


def main() -> None:
    args = stage_args(__doc__, paths=("evals", "predictions", "train", "summary", "table"))
    build_report(
        list(load_yaml(PARAMS_FILE)["methods"]),
        args.evals,
        args.predictions,
        load_section("report", ReportParams),
        args.summary,
        args.table,
        args.train,
    )


if __name__ == "__main__":
    stage_main(main)
