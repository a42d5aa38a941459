"""DVC stage ``synthesize``: code-mix English text with a bilingual lexicon into data/synth."""

from cmmerge.params import load_section
from cmmerge.runner import stage_args, stage_main
from cmmerge.synth.pipeline import SynthesizeParams, run_synthesize


def main() -> None:
    args = stage_args(__doc__, paths=("out", "metrics"), folders={"out": "corpus.txt"})
    run_synthesize(load_section("synthesize", SynthesizeParams), args.out, args.metrics)


if __name__ == "__main__":
    stage_main(main)
