"""The learning curve on tiny random models and the demo data: per-size data, kept cells, statistics."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

import cmmerge.train.finetune
from cmmerge.data.cleaning import CleaningParams
from cmmerge.data.loaders import DatasetSpec
from cmmerge.data.prepare import PrepareParams, prepare
from cmmerge.errors import ConfigError
from cmmerge.eval.compact import decode
from cmmerge.eval.curve import CurveParams, compare_with_reference, run_curve
from cmmerge.eval.metrics import classification_metrics
from cmmerge.fsutil import read_json, read_jsonl
from cmmerge.models import export_base
from cmmerge.train.common import OptimParams
from cmmerge.train.finetune import FinetuneParams, MethodSpec

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.fixture(scope="module")
def setup(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("curve")
    export_base(str(tiny_models["xlmr"]), root / "base")
    shutil.copytree(root / "base", root / "base_copy")
    prep = PrepareParams(
        task=DatasetSpec(str(DEMO / "hinglish_sentiment")),
        english=DatasetSpec(str(DEMO / "english_sentiment")),
        cleaning=CleaningParams(),
        max_english=40,
        max_dev=30,
    )
    # two methods that start from the same weights (in two folders, as θ_ta with λ = 0 and θ_base are): the same
    # training run, so their predictions must be identical
    methods = {
        "full_ft": MethodSpec(init=str(root / "base"), train="data/prepared/task"),
        "same_ft": MethodSpec(init=str(root / "base_copy"), train="data/prepared/task"),
        "joint_ft": MethodSpec(init=str(root / "base"), train="data/prepared/joint"),
    }
    finetune = FinetuneParams(max_length=32, optim=OptimParams(max_steps=3, batch_size=8, learning_rate=1e-3))
    return root, prep, methods, finetune


def _run(setup, work: Path, curve: CurveParams, finetune=None):
    _root, prep, methods, ft = setup
    return run_curve(curve, prep, methods, finetune or ft, work, work / "curve.json", work / "summary.json", 32, 16)


def test_curve_points_are_the_pipelines_data_and_cells_are_kept(setup, tmp_path, monkeypatch):
    _root, prep, _methods, finetune = setup
    curve = CurveParams(sizes=[30, 60], methods=["full_ft", "same_ft", "joint_ft"], seeds=[1, 2], n_boot=500)
    trained = []
    real_finetune = cmmerge.train.finetune.run_finetune

    def counted(init, train, *args, **kwargs):
        trained.append((Path(init).name, Path(train).name))
        return real_finetune(init, train, *args, **kwargs)

    monkeypatch.setattr(cmmerge.train.finetune, "run_finetune", counted)
    summary = _run(setup, tmp_path, curve)
    # same_ft starts from full_ft's weights with its settings: its cells are full_ft's, never trained
    assert sorted(trained) == sorted([("base", "task"), ("base", "joint")] * 4), trained

    # the n-row point trains on exactly what `prepare` writes with max_train: n
    prepare(dataclasses.replace(prep, max_train=60), tmp_path / "ref", tmp_path / "ref.json")
    assert read_jsonl(tmp_path / "n60/prepared/task/train.jsonl") == read_jsonl(tmp_path / "ref/task/train.jsonl")
    assert [summary["sizes"][n]["rows"] for n in ("30", "60")] == [30, 60]

    test = read_jsonl(tmp_path / "n30/prepared/task/test.jsonl")
    gold, labels = [r["label"] for r in test], read_json(tmp_path / "n30/prepared/labels.json")
    for n in ("30", "60"):
        entry = summary["sizes"][n]
        for method in curve.methods:
            seeds = entry["methods"][method]["seeds"]
            for seed in curve.seeds:
                cell = read_json(tmp_path / f"cells/n{n}/{method}/seed{seed}.json")
                assert len(cell["predictions"]) == len(test) == summary["test_items"]
                assert seeds[str(seed)] == classification_metrics(gold, cell["predictions"], labels)["macro_f1"]
            assert entry["methods"][method]["mean"] == pytest.approx(sum(seeds.values()) / 2)
        # same_ft trains the reference's model: reported as the same model, not tested, not in Holm's family
        assert entry["vs_reference"]["same_ft"] == {"identical": True, "delta_macro_f1": 0.0}
        assert entry["vs_reference"]["joint_ft"]["p_holm"] >= entry["vs_reference"]["joint_ft"]["p_value"]
    assert summary["n_comparisons"] == 2
    assert json.loads((tmp_path / "curve.json").read_text())[1]["rows"] == 60
    # the summary keeps every cell's predictions (compact), and testing again from them (as a record of the
    # curve is tested at render time) gives the stage's own results
    stored = summary["predictions"]
    assert decode(stored["gold"], stored["labels"]) == gold
    cell = read_json(tmp_path / "cells/n60/joint_ft/seed2.json")
    assert decode(stored["sizes"]["60"]["joint_ft"]["2"], stored["labels"]) == cell["predictions"]
    again = copy.deepcopy(summary)
    for entry in again["sizes"].values():
        entry["vs_reference"] = {}
    assert compare_with_reference(again, curve.n_boot, curve.boot_seed) == summary

    # a rerun keeps every finished cell: fine-tuning is not called again and the summary is the same
    def no_training(*args, **kwargs):
        raise AssertionError("a kept cell was trained again")

    monkeypatch.setattr(cmmerge.train.finetune, "run_finetune", no_training)
    assert _run(setup, tmp_path, curve) == summary
    # a change to the recipe invalidates the kept cells
    changed = dataclasses.replace(finetune, optim=dataclasses.replace(finetune.optim, learning_rate=2e-3))
    with pytest.raises(AssertionError, match="trained again"):
        _run(setup, tmp_path, curve, changed)


def test_the_curve_scores_the_finetune_stages_model_instead_of_training_it_again(setup, tmp_path, monkeypatch):
    """At the pipeline's own size a cell is the finetune stage's training run: scoring that model gives what
    training it again gives, and a model trained under other settings is never taken."""
    _root, prep, methods, finetune = setup
    n, seed = 60, 1
    # the finetune stage: full_ft on what `prepare` writes with max_train: n
    prepare(dataclasses.replace(prep, max_train=n), tmp_path / "prepared", tmp_path / "prepared.json")
    stage_model = tmp_path / "finetuned" / "full_ft" / f"seed{seed}"
    cmmerge.train.finetune.run_finetune(
        methods["full_ft"].init, tmp_path / "prepared/task", tmp_path / "prepared/labels.json", finetune, seed,
        stage_model, tmp_path / "live",
    )  # fmt: skip
    curve = CurveParams(sizes=[n], methods=["full_ft"], seeds=[seed], n_boot=100)

    def run(work: Path, finetuned: Path | None, params=finetune):
        return run_curve(curve, prep, methods, params, work, work / "c.json", work / "s.json", 32, 16,
                         finetuned=finetuned)  # fmt: skip

    trained = run(tmp_path / "trained", None)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(cmmerge.train.finetune, "run_finetune", no_training)
    taken = run(tmp_path / "taken", tmp_path / "finetuned")
    assert taken["predictions"] == trained["predictions"] and taken["sizes"] == trained["sizes"]
    assert stage_model.is_dir(), "the finetune stage's model is the stage's output: scored, never removed"
    changed = dataclasses.replace(finetune, optim=dataclasses.replace(finetune.optim, learning_rate=2e-3))
    with pytest.raises(AssertionError, match="trained again"):
        run(tmp_path / "other", tmp_path / "finetuned", changed)


def test_curve_errors_name_the_key(setup, tmp_path):
    _root, prep, methods, finetune = setup
    with pytest.raises(ConfigError, match=r"curve\.methods: nope_ft not in methods"):
        _run(setup, tmp_path, CurveParams(sizes=[30], methods=["full_ft", "nope_ft"]))
    outside = {**methods, "odd_ft": MethodSpec(init=methods["full_ft"].init, train="elsewhere/task")}
    with pytest.raises(ConfigError, match="outside data/prepared"):
        run_curve(
            CurveParams(sizes=[30], methods=["odd_ft"]), prep, outside, finetune, tmp_path, tmp_path / "c.json",
            tmp_path / "s.json", 32, 16,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="sizes has duplicates"):
        CurveParams(sizes=[30, 30]).validate("curve")


def test_curve_table_and_figure_come_from_the_summary(setup, tmp_path):
    from cmmerge.eval.curve import save_curve_figure
    from cmmerge.records import curve_table

    curve = CurveParams(sizes=[30, 60], methods=["full_ft", "joint_ft"], seeds=[1, 2], n_boot=200)
    summary = _run(setup, tmp_path, curve)
    table = curve_table(summary, 0.05, "docs/figures/x_curve.svg")
    joint = summary["sizes"]["60"]["vs_reference"]["joint_ft"]
    full = summary["sizes"]["60"]["methods"]["full_ft"]
    assert f"| 60 | {100 * full['mean']:.1f} ± {100 * full['std']:.1f} | " in table
    assert f"({100 * joint['delta_macro_f1']:+.1f}" in table and f"p={joint['p_holm']:.3f})" in table
    assert "Holm-corrected over the 2 comparisons" in table and "![learning curve](docs/figures/x_curve.svg)" in table
    assert "same model" not in table
    # a method that trained the reference's model is shown as such, and the caption says why it has no p-value
    summary["sizes"]["60"]["vs_reference"]["joint_ft"] = {"identical": True, "delta_macro_f1": 0.0}
    table = curve_table(summary, 0.05, "docs/figures/x_curve.svg")
    assert "(same model as `full_ft`)" in table and "identical predictions on every seed and item" in table
    # the README figure is regenerated and compared byte for byte: the same summary must give the same SVG
    save_curve_figure(summary, tmp_path / "a.svg")
    save_curve_figure(summary, tmp_path / "b.svg")
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:400]
    # joint_ft is the same model at 60 rows only: the figure names it as its own line; at every size: as the same
    assert "same model as" not in (tmp_path / "a.svg").read_text()
    summary["sizes"]["30"]["vs_reference"]["joint_ft"] = {"identical": True, "delta_macro_f1": 0.0}
    save_curve_figure(summary, tmp_path / "c.svg")
    assert "joint_ft (same model as full_ft)" in (tmp_path / "c.svg").read_text()


def test_the_default_runs_curve_point_at_its_own_size_reproduces_evaluate(repo_root):
    """The committed default run: the curve's point at prepare.max_train rows trains on the pipeline's own
    training set with the same recipe and seeds, so its scores are evaluate's, to the last digit."""
    import yaml

    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    summary = json.loads((repo_root / "metrics" / "curve_summary.json").read_text())
    point = summary["sizes"][str(params["prepare"]["max_train"])]
    for method, entry in point["methods"].items():
        evaluated = json.loads((repo_root / "metrics" / "eval" / f"{method}.json").read_text())["seeds"]
        for seed, score in entry["seeds"].items():
            assert score == evaluated[seed]["macro_f1"], (method, seed)
