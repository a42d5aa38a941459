"""The fine-tuning recipe chosen on dev, compute-matched epochs, and CPT stopped on validation loss."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from cmmerge.errors import ConfigError
from cmmerge.eval.predict import macro_f1
from cmmerge.fsutil import read_jsonl
from cmmerge.models import export_base
from cmmerge.params import from_dict
from cmmerge.train.common import OptimParams, training_arguments
from cmmerge.train.cpt import CptParams, run_cpt
from cmmerge.train.finetune import FinetuneParams, MethodSpec, run_finetune
from cmmerge.train.recipe import RecipeParams, best_cell, resolve_recipe, run_recipe


def test_best_cell_is_the_best_dev_mean_and_the_first_on_a_tie():
    cells = [
        {"learning_rate": 1e-4, "epochs": 1.0, "dev_macro_f1": 0.5},
        {"learning_rate": 1e-4, "epochs": 2.0, "dev_macro_f1": 0.7},
        {"learning_rate": 3e-4, "epochs": 1.0, "dev_macro_f1": 0.7},
    ]
    assert best_cell(cells) is cells[1]
    with pytest.raises(ConfigError, match="rerun the recipe stage"):
        best_cell([])
    with pytest.raises(ConfigError, match=r"record\(s\) \[0\]"):
        best_cell([{"learning_rate": 1e-4}])


def test_dev_values_are_resolved_from_the_record_and_refused_unresolved(tmp_path):
    params = from_dict(FinetuneParams, {"optim": {"learning_rate": "dev", "epochs": 3}}, where="finetune")
    with pytest.raises(ConfigError, match="run the recipe stage first"):
        resolve_recipe(params, tmp_path / "recipe.json")
    with pytest.raises(ConfigError, match="not resolved from the recipe"):
        training_arguments(tmp_path / "work", params.optim, seed=1)
    (tmp_path / "recipe.json").write_text(json.dumps({"chosen": {"learning_rate": 2e-5, "epochs": 8.0}}))
    resolved = resolve_recipe(params, tmp_path / "recipe.json")
    assert (resolved.optim.learning_rate, resolved.optim.epochs) == (2e-5, 3)  # only the `dev` value is taken
    numbers = from_dict(FinetuneParams, {"optim": {"learning_rate": 1e-3, "epochs": 1}}, where="finetune")
    assert resolve_recipe(numbers, tmp_path / "missing.json") is numbers  # no record needed without `dev`
    with pytest.raises(ConfigError, match="must be numbers"):
        from_dict(CptParams, {"optim": {"learning_rate": "dev"}}, where="cpt")
    with pytest.raises(ConfigError, match=r"finetune\.optim\.learning_rate"):
        from_dict(FinetuneParams, {"optim": {"learning_rate": "best"}}, where="finetune")


def test_epoch_scale_doubles_the_recipe_epochs_and_needs_numbers():
    params = FinetuneParams(optim=OptimParams(epochs=3.0))
    spec = from_dict(MethodSpec, {"init": "models/base", "epoch_scale": 2.0}, where="methods.full_ft_2x")
    assert spec.scaled(params, "methods.full_ft_2x").optim.epochs == 6.0
    assert MethodSpec(init="m").scaled(params, "m") is params
    with pytest.raises(ConfigError, match=r"epoch_scale needs finetune\.optim\.epochs as a number"):
        spec.scaled(FinetuneParams(optim=OptimParams(max_steps=10)), "methods.full_ft_2x")
    with pytest.raises(ConfigError, match="epoch_scale must be positive"):
        from_dict(MethodSpec, {"init": "m", "epoch_scale": 0}, where="methods.x")


@pytest.mark.slow
def test_recipe_grid_scores_every_cell_on_dev_and_picks_the_best(tiny_models, prepared, tmp_path, monkeypatch):
    base = tmp_path / "base"
    export_base(str(tiny_models["xlmr"]), base)
    task, labels = prepared / "prepared" / "task", prepared / "prepared" / "labels.json"
    finetune = FinetuneParams(
        max_length=32, optim=OptimParams(batch_size=8, learning_rate="dev", epochs="dev", logging_steps=1)
    )
    grid = RecipeParams(learning_rates=[1e-5, 3e-3], epochs=[1, 2], seeds=[1, 2])
    record = run_recipe(
        base, task, labels, grid, finetune, tmp_path / "work", tmp_path / "recipe.json", tmp_path / "grid.json", 32, 16,
        chosen_dir=tmp_path / "chosen",
    )  # fmt: skip
    cells = record["cells"]
    assert [(c["learning_rate"], c["epochs"]) for c in cells] == [(1e-5, 1), (1e-5, 2), (3e-3, 1), (3e-3, 2)]
    rows = len(read_jsonl(task / "train.jsonl"))
    per_epoch = -(-rows // 8)
    assert [c["steps"] for c in cells] == [per_epoch, 2 * per_epoch] * 2
    for c in cells:
        assert c["dev_macro_f1"] == pytest.approx((c["dev_seed1"] + c["dev_seed2"]) / 2)
    best = max(cells, key=lambda c: c["dev_macro_f1"])
    written = json.loads((tmp_path / "recipe.json").read_text())
    assert written["chosen"] == {k: best[k] for k in ("learning_rate", "epochs", "steps")}
    assert json.loads((tmp_path / "grid.json").read_text()) == cells
    # the chosen cell's models (and their curves) stay for the stage that would train them again; no other cell's
    tag = f"lr{best['learning_rate']:g}_ep{best['epochs']:g}"
    left = sorted(p.relative_to(tmp_path / "work").as_posix() for p in (tmp_path / "work").glob("*/*seed*"))
    assert left == [f"{tag}/seed1", f"{tag}/seed1.curves", f"{tag}/seed2", f"{tag}/seed2.curves"], left
    # ... and are the recipe stage's output (models/recipe_chosen), which finetune@<method> depends on
    assert sorted(p.name for p in (tmp_path / "chosen").iterdir()) == ["seed1", "seed1.curves", "seed2", "seed2.curves"]
    # a rerun (a killed or multi-session grid) reuses every scored (cell, seed) and trains only what is missing
    import cmmerge.train.finetune as finetune_module

    trained = []
    real_train = finetune_module._train  # what run_finetune calls when it takes no model

    def counting(*args, **kwargs):
        trained.append((args[4], str(args[5])))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(finetune_module, "_train", counting)
    from cmmerge.train import kept as kept_module

    monkeypatch.setattr(kept_module, "reused", {"seconds": 0.0, "untimed": 0})
    (tmp_path / "work/cells/lr0.003_ep2/seed2.json").unlink()
    # the chosen cell's models lost too (DVC removes the stage's outputs, an older grid kept scores only): the
    # grid keeps their scores, and the chosen output trains them again, the same bytes as before
    import shutil

    shutil.rmtree(tmp_path / "work" / tag)
    again = run_recipe(
        base, task, labels, grid, finetune, tmp_path / "work", tmp_path / "recipe.json", tmp_path / "grid.json", 32, 16,
        chosen_dir=tmp_path / "chosen_again",
    )  # fmt: skip
    lost = [(2, str(tmp_path / "work/lr0.003_ep2/seed2"))]
    retrained = [(s, str(tmp_path / "work" / tag / f"seed{s}")) for s in (1, 2) if (s, tag) != (2, "lr0.003_ep2")]
    assert trained == lost + retrained
    assert again["cells"] == cells, "retraining a lost cell reproduces its score exactly"
    for seed in (1, 2):
        first, second = tmp_path / "chosen" / f"seed{seed}", tmp_path / "chosen_again" / f"seed{seed}"
        for name in ("model.safetensors", "train_summary.json"):
            assert (first / name).read_bytes() == (second / name).read_bytes(), (seed, name)
    # each kept cell holds the seconds it took; a rerun counts those of the cells it reused (for the stage timing)
    seconds = {
        p.relative_to(tmp_path).as_posix(): json.loads(p.read_text())["seconds"]
        for p in (tmp_path / "work/cells").rglob("*.json")
    }
    assert len(seconds) == 8 and all(s > 0 for s in seconds.values())
    reused = sum(s for name, s in seconds.items() if name != "work/cells/lr0.003_ep2/seed2.json")
    assert kept_module.reused == {"seconds": pytest.approx(reused), "untimed": 0}
    # the score is evaluate's: rerunning the chosen cell and scoring it the same way gives the same number
    chosen = resolve_recipe(finetune, tmp_path / "recipe.json")
    run_finetune(base, task, labels, chosen, 1, tmp_path / "again", tmp_path / "live", resume=False)
    assert macro_f1(tmp_path / "again", read_jsonl(task / "dev.jsonl"), json.loads(labels.read_text()), 32, 16) == (
        pytest.approx(best["dev_seed1"])
    )
    # the reference method's seed 1 with the chosen recipe is that cell's training run: taken, not trained, and
    # what it takes is what training again wrote (weights, summary, curves)
    trained.clear()
    chosen_3 = dataclasses.replace(chosen, seeds=[1, 2, 3])  # the finetune stage trains its own list of seeds
    take = {"take_from": [tmp_path / "chosen"]}
    run_finetune(base, task, labels, chosen_3, 1, tmp_path / "taken", tmp_path / "curves", **take)
    assert trained == [], "the chosen cell's model is taken"
    again, taken = load_file(tmp_path / "again/model.safetensors"), load_file(tmp_path / "taken/model.safetensors")
    assert again.keys() == taken.keys() and all(torch.equal(again[k], taken[k]) for k in again)
    assert json.loads((tmp_path / "taken/train_summary.json").read_text()) == json.loads(
        (tmp_path / "again/train_summary.json").read_text()
    )
    assert (tmp_path / "curves/metrics.json").is_file()
    run_finetune(base, task, labels, chosen_3, 3, tmp_path / "seed3", tmp_path / "curves3", **take)
    assert trained == [(3, str(tmp_path / "seed3"))], "a seed the grid did not train is trained"


@pytest.mark.slow
def test_cpt_stops_when_validation_loss_stops_improving_and_keeps_the_best_epoch(tiny_models, prepared, tmp_path):
    base = tmp_path / "base"
    export_base(str(tiny_models["bert"]), base, seed=1)
    # constant learning rate: the first k epochs of a long run are then exactly a k-epoch run
    optim = OptimParams(epochs=6, batch_size=8, learning_rate=5e-2, warmup_ratio=0.0, lr_scheduler="constant")
    params = CptParams(max_length=32, early_stopping_patience=1, optim=optim)
    summary = run_cpt(base, prepared / "corpus", params, tmp_path / "cpt", tmp_path / "live")
    tsv = (tmp_path / "live/plots/metrics/eval/loss.tsv").read_text().splitlines()[1:]
    curve = [float(r.split("\t")[1]) for r in tsv]
    assert len(curve) == summary["epochs_run"]
    assert summary["valid_loss"] == pytest.approx(min(curve))
    assert summary["best_epoch"] == curve.index(min(curve)) + 1
    # stopped one epoch (the patience) after the best one, unless the epochs ran out first
    assert summary["epochs_run"] == min(6, summary["best_epoch"] + 1)
    assert summary["stopped_early"] == (summary["epochs_run"] > summary["best_epoch"])  # the rule fired
    # a run ended by max_steps after two epochs did not stop early: its patience of 3 never ran out
    per_epoch = summary["steps"] // summary["epochs_run"]
    budget = dataclasses.replace(
        params, early_stopping_patience=3, optim=dataclasses.replace(optim, max_steps=2 * per_epoch)
    )
    cut = run_cpt(base, prepared / "corpus", budget, tmp_path / "cut", tmp_path / "live_cut")
    assert cut["epochs_run"] == 2 and cut["stopped_early"] is False
    k = summary["best_epoch"]
    short = dataclasses.replace(params, early_stopping_patience=0, optim=dataclasses.replace(optim, epochs=k))
    run_cpt(base, prepared / "corpus", short, tmp_path / "short", tmp_path / "live_short")
    kept, reference = load_file(tmp_path / "cpt/model.safetensors"), load_file(tmp_path / "short/model.safetensors")
    assert all(torch.equal(kept[n], reference[n]) for n in reference), "the best epoch's weights are kept"


def test_cpt_scores_every_epoch_on_the_same_masked_tokens(tiny_models, prepared, tmp_path):
    """A model that does not change scores the same validation loss at every epoch: the masks are drawn once,
    so early stopping reads the model's change, not the noise of fresh masks (which moved this loss by more
    than a hundredth between epochs)."""
    base = tmp_path / "base"
    export_base(str(tiny_models["bert"]), base, seed=1)
    # a learning rate too small to move the weights measurably
    optim = OptimParams(epochs=3, batch_size=8, learning_rate=1e-12, weight_decay=0.0, lr_scheduler="constant")
    run_cpt(base, prepared / "corpus", CptParams(max_length=32, optim=optim), tmp_path / "cpt", tmp_path / "live")
    tsv = (tmp_path / "live/plots/metrics/eval/loss.tsv").read_text().splitlines()[1:]
    curve = [float(r.split("\t")[1]) for r in tsv]
    assert len(curve) == 3
    assert max(curve) - min(curve) < 1e-4, curve


def test_cpt_early_stopping_needs_a_validation_split(tiny_models, prepared, tmp_path):
    base = tmp_path / "base"
    export_base(str(tiny_models["bert"]), base, seed=1)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text((prepared / "corpus" / "train.txt").read_text())
    params = CptParams(max_length=32, early_stopping_patience=2, optim=OptimParams(epochs=2, batch_size=8))
    with pytest.raises(ConfigError, match="needs a validation split"):
        run_cpt(base, corpus, params, tmp_path / "cpt", tmp_path / "live")
    assert not (tmp_path / "cpt").exists()
