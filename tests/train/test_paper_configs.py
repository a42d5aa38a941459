"""The papers' model configs (XLM-R base, full; Llama-3.2-1B, LoRA) run as they are on tiny local stand-ins.

The composed params of ``configs/papers/*.yaml`` are used unchanged except for what cannot run here: the
model (a tiny random model of the same architecture instead of a hub id), the number of optimiser steps
and the sequence lengths. Objective, LoRA settings and target modules, learning rates and merge dtype are the
configs' own, so a user with a GPU and hub access runs the same recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from cmmerge.merge import run_merge
from cmmerge.models import export_base
from cmmerge.overlay import compose
from cmmerge.params import from_dict
from cmmerge.sections import merge_config
from cmmerge.train.cpt import CptParams, run_cpt
from cmmerge.train.finetune import FinetuneParams, run_finetune

ROOT = Path(__file__).resolve().parents[2]


def _shrink(section: dict, max_length: int) -> dict:
    optim = {**section["optim"], "max_steps": 3, "batch_size": 4, "grad_accum": 1, "logging_steps": 1}
    return {**section, "max_length": max_length, "optim": optim}


@pytest.mark.parametrize(
    ("config", "kind", "objective", "lora"),
    [
        ("xlmr_sentimix_hinglish.yaml", "xlmr", "mlm", False),
        ("llama32_1b_sentimix_hinglish.yaml", "llama", "clm", True),
    ],
)
def test_paper_config_runs_on_a_tiny_stand_in(config, kind, objective, lora, tiny_models, prepared, tmp_path):
    params = compose(ROOT / "configs" / "papers" / config)
    assert params["model"]["name"] in {"xlm-roberta-base", "meta-llama/Llama-3.2-1B"}
    cpt_params = from_dict(CptParams, _shrink(params["cpt"], 32), where=f"{config}: cpt")
    ft_params = from_dict(FinetuneParams, {**_shrink(params["finetune"], 32), "seeds": [1]}, where=f"{config}: ft")
    assert cpt_params.objective == objective and cpt_params.optim.lora.enabled == lora
    assert ft_params.optim.lora.enabled == lora

    w = tmp_path
    export_base(str(tiny_models[kind]), w / "base")
    cpt = run_cpt(w / "base", prepared / "corpus", cpt_params, w / "cpt", w / "live_cpt")
    assert cpt["objective"] == objective
    # a LoRA CPT is merged into full weights, so that τ_cpt = θ_cpt − θ_base is defined on every tensor
    base, tuned = load_file(w / "base/model.safetensors"), load_file(w / "cpt/model.safetensors")
    assert set(tuned) == set(base)
    assert any(not (tuned[n] == base[n]).all() for n in base)

    # the config's own task-arithmetic entry, with its model folders in this test's work folder
    entry = params["merges"]["ta"]
    assert entry.get("dtype", "float32") == ("bfloat16" if lora else "float32")  # the 1B model merges in bf16
    where = {"models/base": str(w / "base"), "models/cpt": str(w / "cpt")}
    moved = {**entry, "base_model": where[entry["base_model"]]}
    moved["models"] = [{**m, "model": where[m["model"]]} for m in entry["models"]]
    run_merge(merge_config(moved, config, lam=0.5), w / "ta")
    task, labels = prepared / "prepared/task", prepared / "prepared/labels.json"
    run_finetune(w / "ta", task, labels, ft_params, 1, w / "ft", w / "live_ft")
    assert json.loads((w / "ft/config.json").read_text())["id2label"]
    assert (w / "ft/adapter/adapter_config.json").is_file() == lora
