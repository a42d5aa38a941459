"""The report: summary.json contract, significance marks in the Markdown table, the transfer matrix."""

from __future__ import annotations

import json
import shlex
import sys

import numpy as np
import pytest
import yaml

from cmmerge.eval.metrics import classification_metrics
from cmmerge.eval.plots import transfer_rows, write_transfer
from cmmerge.eval.report import ReportParams, build_report
from cmmerge.fsutil import write_json, write_jsonl

LABELS = ["negative", "neutral", "positive"]


def _fake(gold: list[str], accuracy: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [g if rng.random() < accuracy else str(rng.choice([x for x in LABELS if x != g])) for g in gold]


@pytest.fixture
def fake_run(tmp_path):
    """Predictions and eval metrics of three fake methods: a reference, a copy of it, a clearly better one."""
    gold = {name: np.random.default_rng(i).choice(LABELS, 200).tolist() for i, name in enumerate(["task", "en_es"])}
    accuracy = {"full_ft": 0.55, "copy_ft": 0.55, "better_ft": 0.9}
    seed_base = {"full_ft": 0, "copy_ft": 0, "better_ft": 10}  # copy_ft predicts exactly what full_ft does
    for method, acc in accuracy.items():
        sets = {
            name: {
                "ids": [f"{name}{i}" for i in range(len(g))],
                "gold": g,
                "pred": {str(s): _fake(g, acc, seed_base[method] + s) for s in (1, 2, 3)},
            }
            for name, g in gold.items()
        }
        write_json(tmp_path / "pred" / f"{method}.json", {"labels": LABELS, "sets": sets})
        f1 = 0.3 + acc / 2
        per_seed = {
            name: {
                s: {"macro_f1": classification_metrics(g, p, LABELS)["macro_f1"]} for s, p in sets[name]["pred"].items()
            }
            for name, g in gold.items()
        }
        write_json(
            tmp_path / "eval" / f"{method}.json",
            {
                "method": method,
                "macro_f1": f1,
                "weighted_f1": f1,
                "accuracy": acc,
                "n": 200,
                "seeds": per_seed["task"],
                "transfer": {
                    "en_es": {
                        "macro_f1": f1 - 0.1,
                        "weighted_f1": f1,
                        "accuracy": acc,
                        "n": 200,
                        "seeds": per_seed["en_es"],
                    }
                },
            },
        )
    write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"text": f"t{i}", "label": lab}
            for i, lab in enumerate(["positive"] * 5 + ["negative"] * 3 + ["neutral"] * 2)
        ],
    )
    return tmp_path, list(accuracy)


def test_summary_and_table(fake_run):
    root, methods = fake_run
    params = ReportParams(n_boot=2000)
    summary = build_report(
        methods, root / "eval", root / "pred", params, root / "summary.json", root / "report.md", root / "train.jsonl"
    )
    assert json.loads((root / "summary.json").read_text()) == summary
    assert set(summary["methods"]) == set(methods)
    for m, entry in summary["methods"].items():
        assert set(entry) == {"task", "en_es"}
        f1 = entry["task"]
        assert {
            "mean",
            "std",
            "ci95_low",
            "ci95_high",
            "ci95_seeds_items_low",
            "ci95_seeds_items_high",
            "seeds",
        } <= set(f1)
        assert f1["ci95_low"] <= f1["mean"] <= f1["ci95_high"]
        # the per-seed scores are the evaluate stage's, not recomputed
        evaluated = json.loads((root / "eval" / f"{m}.json").read_text())
        assert f1["seeds"] == {s: v["macro_f1"] for s, v in evaluated["seeds"].items()}
        # every seed's predicted-label counts add up to the test set
        for name in ("task", "en_es"):
            assert all(sum(d.values()) == 200 for d in summary["predicted_labels"][m][name].values())
    assert "vs_full_ft" not in summary["methods"]["full_ft"]["task"]
    copy, better = (
        summary["methods"]["copy_ft"]["task"]["vs_full_ft"],
        summary["methods"]["better_ft"]["task"]["vs_full_ft"],
    )
    # copy_ft trained the same model (identical predictions on every seed and item): reported, not tested
    assert copy == {"identical": True, "delta_macro_f1": 0.0}
    assert better["p_value"] < 0.01 and better["p_holm"] < 0.05
    # Holm over the 2 comparisons (better_ft × 2 test sets) of the table: the identical pair is no test
    assert summary["n_comparisons"] == 2
    raw = sorted(summary["methods"]["better_ft"][s]["vs_full_ft"]["p_value"] for s in ("task", "en_es"))
    assert min(summary["methods"]["better_ft"][s]["vs_full_ft"]["p_holm"] for s in ("task", "en_es")) == (
        pytest.approx(min(1.0, 2 * raw[0]))
    )
    # chance baselines on every test set
    assert summary["baselines"]["majority_class"]["task"]["predicts"] == "positive"
    table = (root / "report.md").read_text().splitlines()
    assert table[0].startswith("| method | in-pair macro-F1 | transfer: en_es |")
    assert [line.split("|")[1].strip() for line in table[2:5]] == [f"`{m}`" for m in methods]  # params order
    row = {line.split("|")[1].strip(): line for line in table if line.startswith("| ")}
    assert "*, p" in row["`better_ft`"] and "(same model as `full_ft`)" in row["`copy_ft`"]
    assert {"*majority_class*", "*stratified_random*"} <= set(row)
    assert len({line.count("|") for line in table if line.startswith("|")}) == 1  # every row as wide as the header
    text = (root / "report.md").read_text()
    assert "Holm-corrected over the 2 comparisons" in text and "not counted in the Holm family" in text


def test_transfer_column_only_where_label_sets_match(fake_run):
    """A transfer set whose gold labels differ from the task's is left out of the table, and the note says so."""
    root, methods = fake_run
    for m in methods:
        path = root / "pred" / f"{m}.json"
        data = json.loads(path.read_text())
        data["sets"]["en_es"]["gold"] = [g if g != "neutral" else "negative" for g in data["sets"]["en_es"]["gold"]]
        path.write_text(json.dumps(data))
    summary = build_report(
        methods,
        root / "eval",
        root / "pred",
        ReportParams(n_boot=200),
        root / "s.json",
        root / "r.md",
        root / "train.jsonl",
    )
    assert summary["label_sets"]["en_es"]["matches_task"] is False
    # a set left out of the table is left out of its tests and of Holm's family (as is copy_ft, the same model)
    assert summary["n_comparisons"] == 1
    assert all("vs_full_ft" not in summary["methods"][m]["en_es"] for m in methods)
    text = (root / "r.md").read_text()
    assert "transfer: en_es" not in text.splitlines()[0]
    assert "Not shown: transfer to en_es (its labels negative, positive differ" in text


def test_missing_predictions_name_the_file(fake_run):
    from cmmerge.errors import DataError

    root, methods = fake_run
    (root / "pred" / "copy_ft.json").unlink()
    with pytest.raises(DataError, match=r"pred/copy_ft.json: predictions of method 'copy_ft' are missing"):
        build_report(
            methods, root / "eval", root / "pred", ReportParams(), root / "s.json", root / "r.md", root / "train.jsonl"
        )
    assert not (root / "s.json").exists()


def test_transfer_matrix_rows(fake_run):
    root, methods = fake_run
    rows = write_transfer(root / "eval", root / "transfer.json", methods, in_pair="en_hi")
    assert json.loads((root / "transfer.json").read_text()) == rows
    assert len(rows) == 2 * len(methods)
    assert {(r["train"], r["test"]) for r in rows} == {(m, t) for m in methods for t in ("en_hi", "en_es")}
    assert all(set(r) == {"train", "test", "macro_f1"} for r in rows)
    assert transfer_rows(root / "eval", None, "en_hi") == sorted(rows, key=lambda r: r["train"])


def test_plots_stage_script(fake_run, repo_root, monkeypatch):
    """stages/plots.py wires the library: transfer.json and the PNG copies, from params.yaml's methods."""
    import runpy

    root, methods = fake_run
    work = root / "work"
    (work / "metrics").mkdir(parents=True)
    (root / "eval").rename(work / "metrics" / "eval")
    for m in methods:  # evaluate writes the in-pair confusion matrix beside the scores
        path = work / "metrics" / "eval" / f"{m}.json"
        data = json.loads(path.read_text())
        data["confusion"] = {"labels": LABELS, "matrix": [[5, 1, 0], [2, 4, 1], [0, 1, 6]]}
        path.write_text(json.dumps(data))
    params = "methods:\n" + "".join(f"  {m}: {{init: models/base}}\n" for m in methods) + "report: {in_pair: en_hi}\n"
    (work / "params.yaml").write_text(params)
    monkeypatch.chdir(work)
    # the paths as dvc.yaml's command line passes them (the stage script has none of its own)
    cmd = shlex.split(yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]["plots"]["cmd"])
    assert cmd[:2] == ["python", "stages/plots.py"]
    monkeypatch.setattr(sys, "argv", cmd[1:])
    with pytest.raises(SystemExit) as done:  # stage scripts exit with run_main's status
        runpy.run_path(str(repo_root / "stages" / "plots.py"), run_name="__main__")
    assert done.value.code == 0
    rows = json.loads((work / "metrics" / "transfer.json").read_text())
    assert {r["test"] for r in rows} == {"en_hi", "en_es"}
    assert (work / "metrics" / "png" / "eval" / "transfer.png").is_file()
    assert all((work / "metrics" / "png" / "eval" / f"confusion_{m}.png").is_file() for m in methods)


def test_per_seed_scores_are_evaluates_not_recomputed(fake_run):
    """The summary's per-seed macro-F1 (and its mean and std) are the numbers in metrics/eval, even where
    scoring the predictions again would give others: the report reads the evaluate outputs it depends on."""
    root, methods = fake_run
    stored = {}
    for i, m in enumerate(methods):
        path = root / "eval" / f"{m}.json"
        data = json.loads(path.read_text())
        for block in (data, data["transfer"]["en_es"]):
            block["seeds"] = {s: {"macro_f1": 0.1 * (i + 1) + 0.01 * int(s)} for s in block["seeds"]}
        stored[m] = data
        path.write_text(json.dumps(data))
    summary = build_report(
        methods,
        root / "eval",
        root / "pred",
        ReportParams(n_boot=50),
        root / "s.json",
        root / "r.md",
        root / "train.jsonl",
    )
    preds = json.loads((root / "pred" / "full_ft.json").read_text())["sets"]["task"]
    rescored = classification_metrics(preds["gold"], preds["pred"]["1"], LABELS)["macro_f1"]
    for m in methods:
        for name, block in (("task", stored[m]), ("en_es", stored[m]["transfer"]["en_es"])):
            got = summary["methods"][m][name]
            want = {s: v["macro_f1"] for s, v in block["seeds"].items()}
            assert got["seeds"] == want
            assert got["mean"] == pytest.approx(np.mean(list(want.values())))
            assert got["std"] == pytest.approx(np.std(list(want.values()), ddof=1))
    assert summary["methods"]["full_ft"]["task"]["seeds"]["1"] != pytest.approx(rescored)


def test_evaluate_outputs_and_predictions_of_different_seeds_are_refused(fake_run):
    from cmmerge.errors import DataError

    root, methods = fake_run
    path = root / "eval" / "copy_ft.json"
    data = json.loads(path.read_text())
    data["seeds"].pop("3")
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"copy_ft.json: seeds \['1', '2'\] of test set 'task' differ from its "):
        build_report(
            methods, root / "eval", root / "pred", ReportParams(), root / "s.json", root / "r.md", root / "train.jsonl"
        )
    assert not (root / "s.json").exists()


@pytest.mark.parametrize("prefix", ["metrics", "metrics/adamergex"])
def test_committed_summary_holds_the_committed_evaluate_scores(repo_root, prefix):
    """In the repository's own results, every per-seed score of the summary is the evaluate stage's."""
    summary_path, eval_dir = repo_root / prefix / "summary.json", repo_root / prefix / "eval"
    if not summary_path.is_file():
        pytest.skip(f"no {summary_path}")
    summary = json.loads(summary_path.read_text())
    for m, sets in summary["methods"].items():
        evaluated = json.loads((eval_dir / f"{m}.json").read_text())
        for name, stats in sets.items():
            block = evaluated if name == "task" else evaluated["transfer"][name]
            assert stats["seeds"] == {s: v["macro_f1"] for s, v in block["seeds"].items()}, (m, name)
            assert stats["mean"] == pytest.approx(block["macro_f1"]), (m, name)
