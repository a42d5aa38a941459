"""DVC stage ``report``: metrics/summary.json and the Markdown results table of all methods."""

from cmmerge.eval.report import ReportParams, build_report
from cmmerge.params import load_section, load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    methods = list(load_yaml("params.yaml")["methods"])
    build_report(
        methods,
        "metrics/eval",
        "results/predictions",
        load_section("report", ReportParams),
        "metrics/summary.json",
        "metrics/report.md",
        "data/prepared/task/train.jsonl",
    )


if __name__ == "__main__":
    stage_main(main)
