"""DVC stage ``corpus``: the CPT corpus (real and/or synthetic), cleaned and de-leaked, in data/corpus."""

from cmmerge.data.corpus import CorpusParams, build_corpus
from cmmerge.params import load_section, load_yaml
from cmmerge.runner import stage_main


def main() -> None:
    build_corpus(
        load_section("corpus", CorpusParams),
        synthetic_path="data/synth/corpus.txt",
        prepared_dir="data/prepared",
        transfer_dir="data/transfer",
        out_dir="data/corpus",
        metrics_path="metrics/corpus.json",
        pairs=list(load_yaml("params.yaml").get("transfer") or {}),
    )


if __name__ == "__main__":
    stage_main(main)
