"""DVC stage ``merge``: θ_base + λ·τ_cpt (models/merged/ta) and TIES(θ_base; τ_cpt [, τ_en]) (models/merged/ties).

Each output is a complete checkpoint written by the streaming merge engine; each carries a
manifest of only its own method and parameters, so changing the TIES settings leaves the task
arithmetic output byte-identical and DVC reruns only what descends from the changed one.
"""

from dataclasses import dataclass, field
from typing import Literal

from cmmerge.merge import MergeConfig, run_merge
from cmmerge.params import load_section, require
from cmmerge.runner import stage_main


@dataclass
class TiesParams:
    density: float = 0.2
    lam: float = field(default=1.0, metadata={"key": "lambda"})
    sign_election: Literal["total", "frequency"] = "total"
    with_english: bool = True  # add τ_en = θ_en − θ_base (multi-source merging)

    def validate(self, where: str) -> None:
        require(0.0 < self.density <= 1.0, f"{where}.density must be in (0, 1], got {self.density}")


@dataclass
class MergeParams:
    lam: float = field(default=0.5, metadata={"key": "lambda"})  # task arithmetic: θ_base + λ·τ_cpt
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    ties: TiesParams = field(default_factory=TiesParams)


def main() -> None:
    p = load_section("merge", MergeParams)
    common = {"base_model": "models/base", "dtype": p.dtype, "missing_tensors": "base"}
    ta = {
        **common,
        "merge_method": "task_arithmetic",
        "models": [{"model": "models/cpt", "name": "cpt", "parameters": {"weight": p.lam}}],
    }
    models = [{"model": "models/cpt", "name": "cpt"}]
    if p.ties.with_english:
        # the English model carries a classification head instead of the MLM/CLM head: its task vector
        # over the base's head tensors is zero ("missing_tensors: base") and its own head is dropped
        models.append({"model": "models/finetune_en", "name": "en"})
    ties = {
        **common,
        "merge_method": "ties",
        "models": [{**m, "parameters": {"weight": 1.0}} for m in models],
        "parameters": {"density": p.ties.density, "lambda": p.ties.lam, "sign_election": p.ties.sign_election},
    }
    run_merge(MergeConfig.from_dict(ta, where="params.yaml: merge"), "models/merged/ta")
    run_merge(MergeConfig.from_dict(ties, where="params.yaml: merge.ties"), "models/merged/ties")


if __name__ == "__main__":
    stage_main(main)
