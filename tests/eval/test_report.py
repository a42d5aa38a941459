"""The report: summary.json contract, significance marks in the Markdown table, the transfer matrix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cmmerge.eval.plots import transfer_rows, write_transfer
from cmmerge.eval.report import ReportParams, build_report
from cmmerge.fsutil import write_json

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
        write_json(
            tmp_path / "eval" / f"{method}.json",
            {
                "method": method,
                "macro_f1": f1,
                "weighted_f1": f1,
                "accuracy": acc,
                "n": 200,
                "transfer": {"en_es": {"macro_f1": f1 - 0.1, "weighted_f1": f1, "accuracy": acc, "n": 200}},
            },
        )
    return tmp_path, list(accuracy)


@pytest.mark.parametrize("test", ["bootstrap", "randomization"])
def test_summary_and_table(fake_run, test):
    root, methods = fake_run
    params = ReportParams(n_boot=300, test=test)
    summary = build_report(methods, root / "eval", root / "pred", params, root / "summary.json", root / "report.md")
    assert json.loads((root / "summary.json").read_text()) == summary
    assert set(summary) == set(methods)
    for entry in summary.values():
        f1 = entry["macro_f1"]
        assert {"mean", "std", "ci95_low", "ci95_high", "boot_ci95_low", "boot_ci95_high"} <= set(f1)
        assert f1["ci95_low"] <= f1["mean"] <= f1["ci95_high"]
        assert "en_es" in entry["transfer"]
    assert "vs_full_ft" not in summary["full_ft"]["macro_f1"]
    assert summary["copy_ft"]["macro_f1"]["vs_full_ft"]["p_value"] > 0.5
    assert summary["better_ft"]["macro_f1"]["vs_full_ft"]["p_value"] < 0.05
    table = (root / "report.md").read_text().splitlines()
    assert table[0].startswith("| method | in-pair macro-F1 | transfer: en_es |")
    better = next(line for line in table if line.startswith("| `better_ft`"))
    copy = next(line for line in table if line.startswith("| `copy_ft`"))
    assert "*, p=" in better and "*, p=" not in copy
    assert len({line.count("|") for line in table[:5]}) == 1  # every row has as many cells as the header


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
    with pytest.raises(SystemExit) as done:  # stage scripts exit with run_main's status
        runpy.run_path(str(repo_root / "stages" / "plots.py"), run_name="__main__")
    assert done.value.code == 0
    rows = json.loads((work / "metrics" / "transfer.json").read_text())
    assert {r["test"] for r in rows} == {"en_hi", "en_es"}
    assert (work / "metrics" / "png" / "eval" / "transfer.png").is_file()
    assert all((work / "metrics" / "png" / "eval" / f"confusion_{m}.png").is_file() for m in methods)
