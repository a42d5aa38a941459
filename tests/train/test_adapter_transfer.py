"""AdaMergeX as an experiment on a tiny random BERT (no MLM head, like the embedded encoder)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

import cmmerge.train.finetune as finetune_module
from cmmerge.errors import ConfigError
from cmmerge.merge.adapters import lora_scaling
from cmmerge.models import export_base
from cmmerge.params import from_dict
from cmmerge.train.adapter_transfer import VARIANTS, AdapterTransferParams, run_adapter_transfer

pytestmark = pytest.mark.slow  # trains reference, task and composed adapters per seed


def _delta_w(adapter) -> dict[str, torch.Tensor]:
    """``s · B A`` per LoRA module of a peft adapter folder, keyed by the module's weight name in the model."""
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    t = load_file(adapter / "adapter_model.safetensors")
    s = lora_scaling(cfg["lora_alpha"], cfg["r"])
    return {
        n.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight"): s
        * t[n.replace("lora_A", "lora_B")]
        @ t[n]
        for n in t
        if n.endswith(".lora_A.weight")
    }


@pytest.fixture(scope="module", params=[0, 3], ids=["head_with_adapters", "head_first"])
def experiment(request, tiny_models, prepared, tmp_path_factory):
    root = tmp_path_factory.mktemp("adamergex")
    export_base(str(tiny_models["bert"]), root / "base", seed=1)
    tiny = {"epochs": 1, "batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0.0, "logging_steps": 1}
    params = from_dict(
        AdapterTransferParams,
        {
            "seeds": [1, 2],
            "max_length": 32,
            "lora": {"enabled": True, "r": 4, "alpha": 8},
            "optim": tiny,
            "reference": {"lines": 40, "max_length": 32, "optim": tiny, "head_steps": request.param},
            "merge": {"lambda": 1.0, "mode": "concat"},
            "lambdas": [0.5, 1.0],
        },
        where="adamergex",
    )
    p = prepared / "prepared"
    out = root / "out"
    run_adapter_transfer(
        root / "base", p / "english", p / "task", prepared / "corpus" / "train.txt", p / "labels.json", params, out
    )
    return root, out


def test_lambda_is_chosen_on_code_mixed_dev(experiment, prepared):
    _root, out = experiment
    record = json.loads((out / "work" / "lambda_dev.json").read_text())
    means = {lam: v["mean"] for lam, v in record["dev_macro_f1"].items()}
    assert set(means) == {"0.5", "1"} and all(set(v) == {"mean", "1", "2"} for v in record["dev_macro_f1"].values())
    assert record["chosen"] == float(max(means, key=lambda k: (means[k], -float(k))))
    # dev is scored as evaluate scores test (its max_length and batch size): the written model at the chosen λ
    # gives the recorded score
    from cmmerge.eval.predict import macro_f1
    from cmmerge.fsutil import read_jsonl

    dev = read_jsonl(prepared / "prepared" / "task" / "dev.jsonl")
    labels = json.loads((prepared / "prepared" / "labels.json").read_text())
    chosen = f"{record['chosen']:g}"
    assert macro_f1(out / "lora_adamergex" / "seed1", dev, labels, 128, 64) == record["dev_macro_f1"][chosen]["1"]


def test_composed_classifier_is_the_english_adapter_moved_by_the_language_gap(experiment):
    root, out = experiment
    base = load_file(root / "base" / "model.safetensors")
    ref_en, ref_cm = (_delta_w(out / "work" / f"ref_{n}" / "adapter") for n in ("en", "cm"))
    assert ref_en.keys() == ref_cm.keys() and any(not torch.equal(ref_en[k], ref_cm[k]) for k in ref_en)
    for seed in (1, 2):
        task = _delta_w(out / "lora_en" / f"seed{seed}" / "adapter")
        composed = load_file(out / "lora_adamergex" / f"seed{seed}" / "model.safetensors")
        english = load_file(out / "lora_en" / f"seed{seed}" / "model.safetensors")
        lam = json.loads((out / "work" / "lambda_dev.json").read_text())["chosen"]
        for name, delta in task.items():
            expected = base[name] + delta + lam * (ref_cm[name] - ref_en[name])
            assert torch.allclose(composed[name], expected, atol=1e-5), name
        # what is not a LoRA module (the classifier head, the other weights) is the English task model's
        heads = [n for n in english if n.startswith("classifier.")]
        assert heads and all(torch.equal(composed[n], english[n]) for n in heads)
        # every other weight is the English task model's, including those fine-tuning initialised because the base
        # checkpoint lacks them (a pooler): starting from θ_base again would draw them afresh
        untouched = [n for n in english if n not in task]
        assert set(composed) == set(english)
        assert all(torch.equal(composed[n], english[n]) for n in untouched), [
            n for n in untouched if not torch.equal(composed[n], english[n])
        ]
    # the two seeds differ (head initialisation, data order); the references are shared
    a, b = (load_file(out / "lora_en" / f"seed{s}" / "model.safetensors") for s in (1, 2))
    assert any(not torch.equal(a[n], b[n]) for n in a)
    for variant in VARIANTS:
        config = json.loads((out / variant / "seed1" / "config.json").read_text())
        assert config["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}


def test_reference_corpora_have_the_same_number_of_lines(experiment, prepared):
    _root, out = experiment
    used = json.loads((out / "work" / "references.json").read_text())
    english = len((prepared / "prepared" / "english" / "train.jsonl").read_text().splitlines())
    code_mixed = len([x for x in (prepared / "corpus" / "train.txt").read_text().splitlines() if x.strip()])
    assert used["lines"] == min(40, english, code_mixed)
    assert used["available"] == {"en": english, "cm": code_mixed}


def test_a_head_trained_first_leaves_the_encoder_as_it_was(experiment):
    root, out = experiment
    if json.loads((out / "work" / "references.json").read_text())["head_steps"] == 0:
        assert not (out / "work" / "ref_head").exists()
        return
    base, head = (
        load_file(root / "base" / "model.safetensors"),
        load_file(out / "work" / "ref_head" / "model.safetensors"),
    )
    body = [n for n in base if n.startswith("bert.")]
    assert body and all(torch.equal(base[n], head[n]) for n in body), "only the MLM head may train"
    assert any(not torch.equal(base[n], head[n]) for n in base if n.startswith("cls."))


def test_a_recipe_given_in_params_is_recorded_with_no_grid(experiment):
    _root, out = experiment
    record = json.loads((out / "work" / "recipe.json").read_text())
    assert record == {"chosen": {"learning_rate": 5e-3, "epochs": 1.0}, "grid_cells": 0}
    assert json.loads((out / "work" / "recipe_grid.json").read_text()) == []


@pytest.fixture(scope="module")
def recipe_experiment(tiny_models, prepared, tmp_path_factory):
    """AdaMergeX with the task adapters' learning rate and epochs chosen on dev over a 2 × 2 grid."""
    root = tmp_path_factory.mktemp("adamergex_recipe")
    export_base(str(tiny_models["bert"]), root / "base", seed=1)
    tiny = {"batch_size": 8, "warmup_ratio": 0.0, "logging_steps": 1}
    params = from_dict(
        AdapterTransferParams,
        {
            "seeds": [1],
            "max_length": 32,
            "lora": {"enabled": True, "r": 4, "alpha": 8},
            "optim": {**tiny, "learning_rate": "dev", "epochs": "dev"},
            "recipe": {"learning_rates": [1e-5, 2e-2], "epochs": [1, 2], "seeds": [1]},
            "reference": {"lines": 40, "max_length": 32, "optim": {**tiny, "epochs": 1, "learning_rate": 5e-3}},
            "merge": {"lambda": 1.0, "mode": "concat"},
        },
        where="adamergex",
    )
    p = prepared / "prepared"
    out = root / "out"
    real_train = finetune_module._train  # what run_finetune calls when it takes no model

    def counted(*args, **kwargs):
        _RECIPE_EXPERIMENT_TRAINED.append(os.path.relpath(args[5], out))
        return real_train(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finetune_module, "_train", counted)
        run_adapter_transfer(
            root / "base", p / "english", p / "task", prepared / "corpus" / "train.txt", p / "labels.json", params, out
        )
    return out


_RECIPE_EXPERIMENT_TRAINED: list[str] = []  # every model recipe_experiment trained, relative to its output folder


def test_the_task_adapters_recipe_is_chosen_for_lora_cm_on_code_mixed_dev(recipe_experiment, prepared):
    from cmmerge.eval.predict import macro_f1
    from cmmerge.fsutil import read_jsonl

    out = recipe_experiment
    grid = json.loads((out / "work" / "recipe_grid.json").read_text())
    record = json.loads((out / "work" / "recipe.json").read_text())
    assert [(c["learning_rate"], c["epochs"]) for c in grid] == [(1e-5, 1.0), (1e-5, 2.0), (2e-2, 1.0), (2e-2, 2.0)]
    assert record["grid_cells"] == 4
    # the best seed-mean dev macro-F1, the first in grid order on a tie
    best = max(grid, key=lambda c: (c["dev_macro_f1"], -grid.index(c)))
    assert record["chosen"] == {k: best[k] for k in ("learning_rate", "epochs", "steps")}
    # lora_cm seed 1 is the chosen cell's seed-1 run again: same steps, same dev score to the last digit
    p = prepared / "prepared"
    dev, labels = read_jsonl(p / "task" / "dev.jsonl"), json.loads((p / "labels.json").read_text())
    cm = out / "lora_cm" / "seed1"
    assert json.loads((cm / "train_summary.json").read_text())["steps"] == best["steps"]
    assert macro_f1(cm, dev, labels, 128, 64) == best["dev_seed1"]
    # ... because it is that run's model, taken from the grid rather than trained a second time
    tag = f"lr{best['learning_rate']:g}_ep{best['epochs']:g}"
    assert f"work/recipe/{tag}/seed1" in _RECIPE_EXPERIMENT_TRAINED
    assert "lora_cm/seed1" not in _RECIPE_EXPERIMENT_TRAINED and "lora_en/seed1" in _RECIPE_EXPERIMENT_TRAINED
    assert (cm / "adapter").is_dir(), "the taken model carries its adapter (AdaMergeX composes adapters)"
    # the English adapter is trained with the same recipe: its steps follow from the chosen epochs
    english_rows = len(read_jsonl(p / "english" / "train.jsonl"))
    steps_en = json.loads((out / "lora_en" / "seed1" / "train_summary.json").read_text())["steps"]
    assert steps_en == -(-english_rows // 8) * int(best["epochs"])
    # the grid's cells differ, so the choice decided something
    assert len({c["steps"] for c in grid}) == 2


def test_adamergex_params_are_checked():
    with pytest.raises(ConfigError, match=r"adamergex\.lora\.enabled must be true"):
        from_dict(AdapterTransferParams, {"lora": {"enabled": False}}, where="adamergex")
    with pytest.raises(ConfigError, match=r"adamergex\.optim takes 'dev'.*adamergex\.recipe must give the grid"):
        from_dict(AdapterTransferParams, {"optim": {"learning_rate": "dev"}}, where="adamergex")
    with pytest.raises(ConfigError, match=r"adamergex\.recipe is set but .* would decide nothing"):
        from_dict(AdapterTransferParams, {"recipe": {"learning_rates": [1e-3]}}, where="adamergex")
    with pytest.raises(ConfigError, match=r"adamergex\.reference\.optim: give numbers"):
        from_dict(AdapterTransferParams, {"reference": {"optim": {"epochs": "dev"}}}, where="adamergex")
    with pytest.raises(ConfigError, match=r"adamergex\.recipe\.epochs must be positive"):
        from_dict(
            AdapterTransferParams,
            {"optim": {"epochs": "dev"}, "recipe": {"epochs": [0, 3]}},
            where="adamergex",
        )
