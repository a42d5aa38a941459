"""DVC stage ``merge``: θ_base + λ·τ_cpt (models/merged/ta), TIES(θ_base; τ_cpt [, τ_en]) (models/merged/ties),
TIES(θ_base; τ_cpt) with the same settings but never τ_en (models/merged/ties_cpt: the ablation that tells
what of the TIES gain comes from the English task labels), and a layer swap of the code-mixed expert θ_cpt
and the English task expert θ_en (models/merged/swap).

Each output is a complete checkpoint written by the streaming merge engine; each carries a
manifest of only its own method and parameters, so changing the TIES settings leaves the task
arithmetic output byte-identical and DVC reruns only what descends from the changed one.
"""

from cmmerge.eval.sweep import lambda_from_sweep
from cmmerge.merge import MergeConfig, run_merge
from cmmerge.params import load_section
from cmmerge.runner import stage_main
from cmmerge.sections import MergeParams

SWEEP = "metrics/sweep.json"  # a dep of this stage in dvc.yaml, read only with merge.lambda: dev


def main() -> None:
    p = load_section("merge", MergeParams)
    lam = lambda_from_sweep(SWEEP) if p.lam == "dev" else p.lam
    common = {"base_model": "models/base", "dtype": p.dtype, "missing_tensors": "base"}
    ta = {
        **common,
        "merge_method": "task_arithmetic",
        "models": [{"model": "models/cpt", "name": "cpt", "parameters": {"weight": lam}}],
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
    ties_cpt = {**ties, "models": [{**models[0], "parameters": {"weight": 1.0}}]}
    swap = {
        **common,
        "merge_method": "layer_swap",
        "models": [
            {"model": "models/cpt", "name": "cpt", "parameters": {"role": "outer"}},
            {"model": "models/finetune_en", "name": "en", "parameters": {"role": "inner"}},
        ],
        "parameters": {
            "bottom": p.swap.bottom,
            "top": p.swap.top,
            "transition": p.swap.transition,
            "embeddings_from": "outer",
            "head_from": "inner",
        },
    }
    run_merge(MergeConfig.from_dict(ta, where="params.yaml: merge"), "models/merged/ta")
    run_merge(MergeConfig.from_dict(ties, where="params.yaml: merge.ties"), "models/merged/ties")
    run_merge(MergeConfig.from_dict(ties_cpt, where="params.yaml: merge.ties"), "models/merged/ties_cpt")
    run_merge(MergeConfig.from_dict(swap, where="params.yaml: merge.swap"), "models/merged/swap")


if __name__ == "__main__":
    stage_main(main)
