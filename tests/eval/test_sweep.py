"""The λ sweep on a tiny random BERT: one flat DVC plot record per λ, dev and test macro-F1 in range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cmmerge.errors import ConfigError
from cmmerge.eval.predict import macro_f1
from cmmerge.eval.sweep import SweepParams, best_lambda, run_sweep
from cmmerge.fsutil import read_jsonl, write_json, write_jsonl
from cmmerge.models import export_base
from cmmerge.selection import lambda_from_sweep
from cmmerge.train.common import OptimParams
from cmmerge.train.finetune import FinetuneParams

LABELS = ["negative", "neutral", "positive"]
WORDS = {"negative": "bura bakwas", "neutral": "kal office", "positive": "bahut acha"}


def _rows(n: int, offset: int) -> list[dict]:
    return [{"id": str(offset + i), "text": f"{WORDS[LABELS[i % 3]]} {i}", "label": LABELS[i % 3]} for i in range(n)]


def _models_and_task(tiny_models, tmp_path: Path) -> tuple[Path, Path, Path, FinetuneParams]:
    """θ_base, a stand-in for θ_cpt, a tiny task folder (with labels.json beside it) and fine-tuning params."""
    import tiny

    base, cpt = tmp_path / "base", tmp_path / "cpt"
    export_base(str(tiny_models["bert"]), base)
    # stands in for θ_cpt: the same architecture with other weights, saved with an MLM head like a CPT output
    export_base(str(tiny.tiny_bert(tmp_path / "cpt_raw", seed=1)), cpt)
    task = tmp_path / "task"
    write_jsonl(task / "train.jsonl", _rows(12, 0))
    write_jsonl(task / "dev.jsonl", _rows(6, 100))
    write_jsonl(task / "test.jsonl", _rows(6, 200))
    write_json(tmp_path / "labels.json", LABELS)
    return base, cpt, task, FinetuneParams(max_length=16, optim=OptimParams(max_steps=2, batch_size=6, logging_steps=1))


def test_sweep_writes_one_record_per_lambda(tiny_models, tmp_path, monkeypatch):
    base, cpt, task, ft = _models_and_task(tiny_models, tmp_path)
    out = tmp_path / "metrics" / "sweep.json"
    entry = {
        "merge_method": "task_arithmetic",
        "base_model": str(base),
        "models": [{"model": str(cpt), "name": "cpt"}],
        "parameters": {"lambda": 0.5},
        "missing_tensors": "base",
    }

    def sweep(entry: dict) -> list[dict]:
        return run_sweep(
            "ta", entry, task, task / "test.jsonl", tmp_path / "labels.json",
            SweepParams(lambdas=[1.0, 0.0], seeds=[3]), ft, tmp_path / "work", out,
            eval_max_length=24, eval_batch_size=4, png_path=tmp_path / "sweep.png",
        )  # fmt: skip

    rows = sweep(entry)
    assert json.loads(out.read_text()) == rows
    assert [r["lambda"] for r in rows] == [0.0, 1.0]
    for r in rows:
        assert 0.0 <= r["dev_macro_f1"] <= 1.0 and 0.0 <= r["test_macro_f1"] <= 1.0
        assert r["dev_seed3"] == r["dev_macro_f1"] and r["dev_std"] == 0.0
        assert r["merge"] == "ta" and all(isinstance(v, (int, float)) for k, v in r.items() if k != "merge")
    assert not (tmp_path / "work" / "lambda0").exists()  # checkpoints are removed once scored
    assert (tmp_path / "sweep.png").is_file()
    # the entry's own λ is what the sweep replaces: a change of it trains nothing again and gives the same record
    import cmmerge.train.finetune as finetune_module

    def no_training(*args, **kwargs):
        raise AssertionError("a kept sweep cell was trained again")

    monkeypatch.setattr(finetune_module, "run_finetune", no_training)
    assert sweep({**entry, "parameters": {"lambda": "dev"}}) == rows
    with pytest.raises(AssertionError, match="trained again"):  # but a change of the merge itself does
        sweep({**entry, "missing_tensors": "error"})
    # dev and test are scored as evaluate scores test (its max_length and batch size, not fine-tuning's)
    monkeypatch.undo()
    kept = run_sweep(
        "ta", entry, task, task / "test.jsonl", tmp_path / "labels.json",
        SweepParams(lambdas=[1.0], seeds=[3], keep_models=True), ft, tmp_path / "work2", tmp_path / "s2.json",
        eval_max_length=24, eval_batch_size=4,
    )  # fmt: skip
    model = tmp_path / "work2/lambda1/seed3"
    assert kept[0]["dev_macro_f1"] == rows[1]["dev_macro_f1"], "a separate work folder retrains to the same score"
    assert macro_f1(model, read_jsonl(task / "dev.jsonl"), LABELS, 24, 4) == kept[0]["dev_macro_f1"]


def test_lambda_is_chosen_on_dev_not_test_and_ties_go_to_the_first_in_the_grid(tmp_path):
    records = [
        {"lambda": 0.0, "dev_macro_f1": 0.50, "test_macro_f1": 0.90},  # best on test: must not matter
        {"lambda": 0.5, "dev_macro_f1": 0.61, "test_macro_f1": 0.40},
        {"lambda": 1.0, "dev_macro_f1": 0.61, "test_macro_f1": 0.45},
    ]
    assert best_lambda(records) == 0.5
    write_json(tmp_path / "sweep.json", records)
    assert lambda_from_sweep(tmp_path / "sweep.json") == 0.5


def test_lambda_from_a_missing_or_foreign_sweep_says_what_to_run(tmp_path):
    with pytest.raises(ConfigError, match=r"merges.ta.parameters.lambda is 'dev'.*does not exist.*dvc repro sweep"):
        lambda_from_sweep(tmp_path / "nope.json")
    write_json(tmp_path / "old.json", [{"lambda": 0.5, "macro_f1": 0.6}])
    with pytest.raises(ConfigError, match=r"record\(s\) \[0\] lack 'lambda' or 'dev_macro_f1'"):
        lambda_from_sweep(tmp_path / "old.json")
    write_json(tmp_path / "other.json", [{"merge": "ties", "lambda": 0.5, "dev_macro_f1": 0.6}])
    with pytest.raises(ConfigError, match=r"swept merges.ties: set sweep.merge: ta"):
        lambda_from_sweep(tmp_path / "other.json", "ta")
    with pytest.raises(ConfigError, match="holds no candidates"):
        best_lambda([])


def test_a_lambda_that_leaves_the_base_in_value_takes_the_model_fine_tuned_from_the_base(tiny_models, tmp_path):
    """Task arithmetic at λ = 0 writes θ_base + 0·τ: θ_base in value, though not in bytes (a -0.0 becomes 0.0, and a
    merge manifest lies beside it). Fine-tuning it is the run that fine-tunes θ_base (the recipe stage's chosen
    model): the sweep takes that model instead of training, and training it gives the same weights and scores."""
    import torch
    from safetensors.torch import load_file, save_file

    import cmmerge.train.finetune as finetune_module
    from cmmerge.train.finetune import run_finetune

    base, cpt, task, ft = _models_and_task(tiny_models, tmp_path)
    # a -0.0 in θ_base where τ > 0, as the embedded encoder has one: θ_base + 0·τ turns it into 0.0
    weights, name = load_file(base / "model.safetensors"), "bert.embeddings.word_embeddings.weight"
    at = int(torch.nonzero(load_file(cpt / "model.safetensors")[name].flatten() > 0)[0])
    weights[name].view(-1)[at] = -0.0
    save_file(weights, base / "model.safetensors", metadata={"format": "pt"})
    entry = {"merge_method": "task_arithmetic", "base_model": str(base), "models": [{"model": str(cpt)}]}
    chosen = tmp_path / "chosen" / "seed3"
    run_finetune(base, task, tmp_path / "labels.json", ft, 3, chosen, tmp_path / "chosen" / "seed3.curves")

    grid = SweepParams(lambdas=[0.0, 1.0], seeds=[3], keep_models=True)

    def sweep(work: str, take_from=()) -> list[dict]:
        return run_sweep(
            "ta", entry, task, task / "test.jsonl", tmp_path / "labels.json", grid, ft, tmp_path / work,
            tmp_path / f"{work}.json", eval_max_length=24, eval_batch_size=4, take_from=take_from,
        )  # fmt: skip

    trained = []
    real_train = finetune_module._train

    def counting(*args, **kwargs):
        trained.append(Path(args[0]).parent.name)
        return real_train(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finetune_module, "_train", counting)
        taken = sweep("taken", take_from=[tmp_path / "chosen"])
    assert trained == ["lambda1"], "λ = 0 took the model fine-tuned from θ_base"
    merged = tmp_path / "taken" / "lambda0" / "merged"
    assert (merged / "model.safetensors").read_bytes() != (base / "model.safetensors").read_bytes()
    assert torch.signbit(load_file(merged / "model.safetensors")[name].view(-1)[at]) == torch.tensor(False)
    # training from the merge instead: the weights it gives equal the taken ones in value, and so do the scores
    trained_again = sweep("trained")
    assert trained_again == taken
    first = load_file(tmp_path / "trained" / "lambda0" / "seed3" / "model.safetensors")
    second = load_file(chosen / "model.safetensors")
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
