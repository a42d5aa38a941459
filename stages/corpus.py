"""DVC stage ``corpus``: the CPT corpus (real and/or synthetic), cleaned and de-leaked, in data/corpus."""

from cmmerge.data.corpus import CorpusParams, build_corpus
from cmmerge.params import PARAMS_FILE, load_section, load_yaml
from cmmerge.runner import stage_args, stage_main


def main() -> None:
    args = stage_args(
        __doc__, paths=("synthetic", "prepared", "transfer", "out", "metrics"), folders={"out": "train.txt"}
    )
    build_corpus(
        load_section("corpus", CorpusParams),
        synthetic_path=args.synthetic,
        prepared_dir=args.prepared,
        transfer_dir=args.transfer,
        out_dir=args.out,
        metrics_path=args.metrics,
        pairs=list(load_yaml(PARAMS_FILE).get("transfer") or {}),
    )


if __name__ == "__main__":
    stage_main(main)
