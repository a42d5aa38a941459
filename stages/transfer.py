"""DVC stage ``transfer``: the train × test macro-F1 matrix of every method → metrics/transfer.json (+ PNG)."""

from cmmerge.eval.plots import save_png_matrix, write_transfer
from cmmerge.params import load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    params = load_yaml("params.yaml")
    in_pair = params.get("report", {}).get("in_pair", "task")
    rows = write_transfer("metrics/eval", "metrics/transfer.json", list(params["methods"]), in_pair)
    save_png_matrix(rows, "metrics/plots/transfer.png")


if __name__ == "__main__":
    stage_main(main)
