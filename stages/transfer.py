"""DVC stage ``transfer``: the train × test macro-F1 matrix of every method → metrics/transfer.json (+ PNG)."""

from cmmerge.eval.plots import save_png_matrix, write_transfer
from cmmerge.eval.report import ReportParams
from cmmerge.params import load_section, load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    methods = list(load_yaml("params.yaml")["methods"])
    in_pair = load_section("report", ReportParams).in_pair
    rows = write_transfer("metrics/eval", "metrics/transfer.json", methods, in_pair)
    save_png_matrix(rows, "metrics/plots/transfer.png")


if __name__ == "__main__":
    stage_main(main)
