"""DVC stage ``base``: materialise θ_base (with its pre-training head) as models/base."""

from cmmerge.models import export_base
from cmmerge.params import load_section
from cmmerge.runner import stage_args, stage_main
from cmmerge.sections import ModelParams


def main() -> None:
    args = stage_args(__doc__, paths=("out",))
    p = load_section("model", ModelParams)
    export_base(p.name, args.out, seed=p.seed, trust_remote_code=p.trust_remote_code, allow_pickle=p.allow_pickle)


if __name__ == "__main__":
    stage_main(main)
