"""DVC stage ``prepare``: load, clean and de-leak the task (and English) data into data/prepared."""

from cmmerge.data.prepare import PrepareParams, prepare
from cmmerge.params import load_section
from cmmerge.runner import stage_main


def main() -> None:
    prepare(load_section("prepare", PrepareParams), "data/prepared", "metrics/data.json")


if __name__ == "__main__":
    stage_main(main)
