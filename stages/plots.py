"""DVC stage ``plots``: the train × test transfer matrix (metrics/transfer.json) and PNG copies for the README.

PNGs: ``metrics/png/eval/transfer.png`` and ``metrics/png/eval/confusion_<method>.png`` (the in-pair confusion
matrix summed over seeds, from ``metrics/eval/<method>.json``).
"""

from cmmerge.eval.plots import save_png_confusion, save_png_matrix, write_transfer
from cmmerge.eval.report import ReportParams
from cmmerge.fsutil import read_json
from cmmerge.params import load_section, load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    methods = list(load_yaml("params.yaml")["methods"])
    in_pair = load_section("report", ReportParams).in_pair
    rows = write_transfer("metrics/eval", "metrics/transfer.json", methods, in_pair)
    save_png_matrix(rows, "metrics/png/eval/transfer.png")
    for method in methods:
        confusion = read_json(f"metrics/eval/{method}.json")["confusion"]
        save_png_confusion(
            confusion["labels"],
            confusion["matrix"],
            f"metrics/png/eval/confusion_{method}.png",
            title=f"{method}: in-pair test, summed over seeds",
        )


if __name__ == "__main__":
    stage_main(main)
