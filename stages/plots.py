"""DVC stage ``plots``: the train × test transfer matrix (metrics/transfer.json) and PNG copies for the README.

PNGs: ``metrics/png/eval/transfer.png`` and ``metrics/png/eval/confusion_<method>.png`` (the in-pair confusion
matrix summed over seeds, from ``metrics/eval/<method>.json``).
"""

from pathlib import Path

from cmmerge.eval.plots import save_png_confusion, save_png_matrix, write_transfer
from cmmerge.eval.report import ReportParams
from cmmerge.fsutil import read_json
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main


def main() -> None:
    args = stage_args(__doc__, paths=("evals", "transfer", "png"))
    methods = list(load_yaml(PARAMS_FILE)["methods"])
    in_pair = load_section("report", ReportParams).in_pair
    png = Path(args.png)
    rows = write_transfer(args.evals, args.transfer, methods, in_pair)
    save_png_matrix(rows, png / "transfer.png")
    for method in methods:
        confusion = read_json(Path(args.evals) / f"{method}.json")["confusion"]
        save_png_confusion(
            confusion["labels"],
            confusion["matrix"],
            png / f"confusion_{method}.png",
            title=f"{method}: in-pair test, summed over seeds",
        )


if __name__ == "__main__":
    stage_main(main)
