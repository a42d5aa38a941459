"""Experiment records: what a record holds, that tampering is caught, and that README's tables are generated."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from cmmerge import records
from cmmerge.errors import DataError
from cmmerge.eval.metrics import classification_metrics
from cmmerge.eval.report import ReportParams, build_report
from cmmerge.fsutil import read_json, write_json, write_jsonl

LABELS = ["negative", "neutral", "positive"]
ROOT = Path(__file__).resolve().parent.parent


def _fake(gold, accuracy, seed):
    rng = np.random.default_rng(seed)
    return [g if rng.random() < accuracy else str(rng.choice([x for x in LABELS if x != g])) for g in gold]


PIPELINE = {
    "prepare": {"cmd": "x", "outs": ["data/prepared", "metrics/data.json"]},
    "cpt": {"cmd": "x", "outs": ["metrics/cpt.json", "metrics/train/cpt"]},
    "sweep": {"cmd": "x", "outs": ["metrics/sweep.json"]},
    "evaluate": {
        "foreach": "${methods}",
        "do": {"cmd": "x ${key}", "outs": ["results/predictions/${key}.json", "metrics/eval/${key}.json"]},
    },
    "report": {"cmd": "x", "outs": ["metrics/summary.json", "metrics/report.md"]},
    "adamergex": {"cmd": "x", "outs": ["metrics/adamergex"]},
    "plots": {"cmd": "x", "outs": ["metrics/png"]},
}


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A finished run's files as the pipeline leaves them: params, lock, metrics, predictions."""
    repo = tmp_path / "run"
    gold = {"task": np.random.default_rng(0).choice(LABELS, 120).tolist()}
    params = {
        "prepare": {"seed": 13},
        "cpt": {"seed": 13},
        "finetune": {"seeds": [1, 2]},
        "methods": {"full_ft": {"init": "models/base"}, "ta_ft": {"init": "models/merged/ta"}},
        "report": {"alpha": 0.05},
    }
    (repo / "metrics" / "train" / "cpt").mkdir(parents=True)
    (repo / "metrics" / "train" / "cpt" / "loss.tsv").write_text("step\tloss\n1\t7.0\n")
    (repo / "metrics" / "png").mkdir()
    (repo / "metrics" / "png" / "x.png").write_bytes(b"\x89PNG")
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    # the pipeline: a record keeps only what its stages write
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": PIPELINE}))
    lock = {
        "schema": "2.0",
        "stages": {
            "prepare": {
                "cmd": "python stages/prepare.py",
                "deps": [
                    {"path": "../shared/data/sentimix_hinglish", "md5": "abc.dir", "size": 10, "nfiles": 3},
                    {"path": "cmmerge/data/prepare.py", "md5": "def"},
                ],
                "outs": [{"path": "data/prepared", "md5": "ghi.dir"}],
            },
            "cpt": {"cmd": "x", "deps": [{"path": "data/prepared", "md5": "ghi.dir"}], "outs": []},
        },
    }
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    for method, acc in (("full_ft", 0.5), ("ta_ft", 0.8)):
        pred = {str(s): _fake(gold["task"], acc, s + (10 if method == "ta_ft" else 0)) for s in (1, 2)}
        write_json(
            repo / "results" / "predictions" / f"{method}.json",
            {
                "labels": LABELS,
                "sets": {"task": {"ids": [f"i{i}" for i in range(120)], "gold": gold["task"], "pred": pred}},
            },
        )
        write_json(
            repo / "metrics" / "eval" / f"{method}.json",
            {
                "method": method,
                "seeds": {
                    s: {"macro_f1": classification_metrics(gold["task"], p, LABELS)["macro_f1"]}
                    for s, p in pred.items()
                },
            },
        )
    write_jsonl(repo / "train.jsonl", [{"text": str(i), "label": LABELS[i % 3]} for i in range(30)])
    build_report(
        ["full_ft", "ta_ft"],
        repo / "metrics" / "eval",
        repo / "results" / "predictions",
        ReportParams(n_boot=500),
        repo / "metrics" / "summary.json",
        repo / "metrics" / "report.md",
        repo / "train.jsonl",
    )
    return repo


def test_record_holds_the_run(run_dir):
    path = records.record_run("demo_run", run_dir, config="configs/real/x.yaml", check_workspace=False)
    assert path == run_dir / "results" / "demo_run"
    meta = records.load_record("demo_run", run_dir / "results")
    assert meta["config"] == "configs/real/x.yaml" and meta["methods"] == ["full_ft", "ta_ft"]
    # inputs: data that no stage produced and that is not code, with DVC's hashes
    assert meta["inputs"] == {"../shared/data/sentimix_hinglish": {"md5": "abc.dir", "nfiles": 3, "size": 10}}
    assert {"params.yaml", "dvc.lock", "metrics/summary.json", "metrics/eval/ta_ft.json"} <= set(meta["files"])
    assert "metrics/train/cpt/loss.tsv" in meta["files"] and "metrics/png/x.png" not in meta["files"]
    # compact predictions expand back to exactly what evaluate wrote
    for method in ("full_ft", "ta_ft"):
        assert records.expand_predictions(path, method) == read_json(
            run_dir / "results" / "predictions" / f"{method}.json"
        )
    assert all((path / rel).stat().st_size < records.MAX_FILE_BYTES for rel in meta["files"])


def test_the_record_leaves_out_what_this_pipeline_did_not_write(run_dir):
    """A real config run in a checkout of the default keeps the default's dvc.lock entry of a transfer stage the
    config clears, and the default's committed metrics of it: neither is part of the run, nor its inputs."""
    lock = yaml.safe_load((run_dir / "dvc.lock").read_text())
    lock["stages"]["prepare_transfer@en_es"] = {
        "cmd": "python stages/prepare_transfer.py en_es",
        "deps": [{"path": "data/demo/en_es", "md5": "zzz.dir", "size": 5, "nfiles": 2}],
        "outs": [{"path": "metrics/data_transfer/en_es.json", "md5": "yyy"}],
    }
    (run_dir / "dvc.lock").write_text(yaml.safe_dump(lock))
    write_json(run_dir / "metrics" / "data_transfer" / "en_es.json", {"rows": 7})
    write_json(run_dir / "metrics" / "synth_report.json", {"from": "a benchmark, not a stage"})
    path = records.record_run("demo_run", run_dir, check_workspace=False)
    meta = records.load_record("demo_run", run_dir / "results")
    assert not any(f.startswith("metrics/data_transfer") or "synth_report" in f for f in meta["files"])
    assert meta["left_out"] == {
        "dvc_lock_stages": ["prepare_transfer@en_es"],
        "files": ["metrics/data_transfer/en_es.json", "metrics/synth_report.json"],
    }
    assert set(yaml.safe_load((path / "dvc.lock").read_text())["stages"]) == {"prepare", "cpt"}
    assert "data/demo/en_es" not in meta["inputs"] and "../shared/data/sentimix_hinglish" in meta["inputs"]
    assert "metrics/eval/ta_ft.json" in meta["files"] and "metrics/train/cpt/loss.tsv" in meta["files"]


def test_a_folder_of_stage_outputs_is_not_an_input(run_dir):
    """The report reads metrics/eval whole; each evaluate@ stage writes one file in it: not data from outside."""
    lock = yaml.safe_load((run_dir / "dvc.lock").read_text())
    lock["stages"]["evaluate@full_ft"] = {"cmd": "x", "outs": [{"path": "metrics/eval/full_ft.json", "md5": "0" * 32}]}
    lock["stages"]["report"] = {"cmd": "x", "deps": [{"path": "metrics/eval", "md5": "1" * 32 + ".dir", "nfiles": 2}]}
    (run_dir / "dvc.lock").write_text(yaml.safe_dump(lock))
    records.record_run("demo_run", run_dir, check_workspace=False)
    assert records.load_record("demo_run", run_dir / "results")["inputs"] == {
        "../shared/data/sentimix_hinglish": {"md5": "abc.dir", "nfiles": 3, "size": 10}
    }


def test_a_pipeline_dvc_cannot_read_is_refused(run_dir):
    (run_dir / "dvc.yaml").write_text("stages:\n  prepare: [not, a, stage\n")
    with pytest.raises(DataError, match=r"dvc.yaml: DVC cannot read the pipeline"):
        records.record_run("demo_run", run_dir, check_workspace=False)
    assert not (run_dir / "results" / "demo_run").exists()


def test_the_record_takes_the_run_times_of_its_own_params(run_dir):
    """Timings written by the stage runner with this run's params of each stage are kept and summed per stage
    family; one written with other values of a key the stage lists (an earlier configuration) is listed as
    unmeasured, never used, while a change to a key the stage does not list keeps its timing."""
    from cmmerge.runner import write_stage_timing

    (run_dir / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "prepare": {"cmd": "x", "params": ["prepare"]},
                    "cpt": {"cmd": "x", "params": ["cpt"]},
                    "finetune": {"foreach": "${methods}", "do": {"cmd": "x", "params": ["methods.${key}", "finetune"]}},
                }
            }
        )
    )
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    write_stage_timing("prepare", 30.0, 25.0, run_dir)
    lock = yaml.safe_load((run_dir / "dvc.lock").read_text())
    lock["stages"] |= {"finetune@full_ft": {"cmd": "x"}, "finetune@ta_ft": {"cmd": "x"}}
    (run_dir / "dvc.lock").write_text(yaml.safe_dump(lock))
    write_stage_timing("finetune@full_ft", 90.0, 170.0, run_dir)
    # ta_ft finished on its second attempt: the first was killed after 60 s, and that time counts
    write_stage_timing("finetune@ta_ft", 90.0, 170.0, run_dir, interrupted={"attempts": 1, "seconds": 60.0})
    (run_dir / "params.yaml").write_text(yaml.safe_dump({**params, "cpt": {"seed": 14}}))
    write_stage_timing("cpt", 999.0, 999.0, run_dir)  # written with another cpt.seed: not this run's
    # the run's params.yaml: report.alpha differs from what every timing above was written with; no stage lists it
    (run_dir / "params.yaml").write_text(yaml.safe_dump({**params, "report": {"alpha": 0.01}}))
    records.record_run("demo_run", run_dir, check_workspace=False)
    timings = read_json(run_dir / "results" / "demo_run" / "timings.json")
    assert set(timings["stages"]) == {"prepare", "finetune@full_ft", "finetune@ta_ft"}
    assert timings["unmeasured"] == ["cpt"]
    table = records.record_table("demo_run", run_dir / "results", "timings")
    assert "| `finetune` | 2 | 4.0 |" in table and "| `prepare` | 1 | 0.5 |" in table
    assert "| all | 3 | 4.5 |" in table and "Not measured: `cpt`." in table
    assert "killed before the run that finished" in table and "`finetune@ta_ft` (1)" in table


def test_the_command_prints_every_part_readme_names(run_dir, monkeypatch, capsys):
    from cmmerge.cli import main
    from cmmerge.runner import write_stage_timing

    write_stage_timing("prepare", 30.0, 25.0, run_dir)
    records.record_run("demo_run", run_dir, check_workspace=False)
    monkeypatch.chdir(run_dir)
    assert main(["results", "table", "demo_run", "--part", "timings"]) == 0
    assert "| `prepare` | 1 | 0.5 |" in capsys.readouterr().out


def test_table_comes_from_the_record(run_dir):
    records.record_run("demo_run", run_dir, check_workspace=False)
    table = records.record_table("demo_run", run_dir / "results")
    assert table.startswith("| method | in-pair macro-F1 |")
    summary = read_json(run_dir / "metrics" / "summary.json")
    ta = summary["methods"]["ta_ft"]["task"]
    assert f"| `ta_ft` | {100 * ta['mean']:.1f} ± {100 * ta['std']:.1f} (" in table
    assert "*majority_class*" in table and "*stratified_random*" in table
    assert "every seed shares the data subsample (prepare.seed 13), one CPT run (cpt.seed 13)" in table


def test_readme_blocks_regenerated_and_checked(run_dir, tmp_path):
    records.record_run("demo_run", run_dir, check_workspace=False)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results:demo_run -->\nold numbers typed by hand\n<!-- /results:demo_run -->\nend\n")
    assert records.render_readme(readme, run_dir / "results", check=True) == ["demo_run"]
    assert "old numbers" in readme.read_text()  # check mode writes nothing
    assert records.render_readme(readme, run_dir / "results") == ["demo_run"]
    text = readme.read_text()
    assert records.record_table("demo_run", run_dir / "results") in text and text.endswith(
        "<!-- /results:demo_run -->\nend\n"
    )
    assert records.render_readme(readme, run_dir / "results", check=True) == []


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda p: (p / "metrics/summary.json").write_text('{"edited": 1}\n'), r"summary.json: sha256 differs"),
        (lambda p: (p / "predictions/ta_ft.json").unlink(), r"predictions/ta_ft.json: listed in .* but missing"),
    ],
    ids=["edited", "missing"],
)
def test_a_tampered_record_is_refused(run_dir, tamper, message):
    path = records.record_run("demo_run", run_dir, check_workspace=False)
    tamper(path)
    with pytest.raises(DataError, match=message):
        records.record_table("demo_run", run_dir / "results")


def test_bad_requests_name_what_is_wrong(run_dir):
    records.record_run("demo_run", run_dir, check_workspace=False)
    with pytest.raises(DataError, match=r"no_such/record.json: no such record \(records: demo_run\)"):
        records.load_record("no_such", run_dir / "results")
    with pytest.raises(DataError, match=r"record name 'a b'"):
        records.record_run("a b", run_dir, check_workspace=False)
    shutil.rmtree(run_dir / "results" / "predictions")
    with pytest.raises(DataError, match=r"results/predictions: missing; run `dvc repro`"):
        records.record_run("again", run_dir, check_workspace=False)
    assert not (run_dir / "results" / "again").exists()


def test_diff_of_two_records(run_dir):
    records.record_run("a", run_dir, check_workspace=False)
    summary_path = run_dir / "metrics" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["methods"]["ta_ft"]["task"]["mean"] += 0.02
    summary_path.write_text(json.dumps(summary))
    records.record_run("b", run_dir, check_workspace=False)
    out = records.diff_records("a", "b", run_dir / "results")
    assert "| `ta_ft` | task |" in out and out.strip().splitlines()[-1].endswith("| +2.0 |")
    assert "| `full_ft` | task |" in out and "+0.0" in out


def test_claims_side_by_side_repeat_each_records_own_test(run_dir, monkeypatch):
    import os
    import re

    from cmmerge import claims as claims_module

    monkeypatch.chdir(ROOT)  # the claims are the project's (configs/claims/seed_papers.yaml)
    results = run_dir / "results"
    records.record_run("a", run_dir, check_workspace=False)
    # b: ta_ft trained the same model as full_ft (as task arithmetic with λ = 0 chosen on dev does)
    shutil.copy(results / "predictions" / "full_ft.json", results / "predictions" / "ta_ft.json")
    records.record_run("b", run_dir, check_workspace=False)
    calls = []
    real = claims_module._evaluate_claims
    monkeypatch.setattr(claims_module, "_EVALUATED", {})
    monkeypatch.setattr(claims_module, "_evaluate_claims", lambda *a: calls.append(a[0].name) or real(*a))
    own = records.record_table("a", results, part="claims")
    both = records.record_table("a+b", results, part="claims")
    assert calls == ["a", "b"], "each record's claims are tested once, whichever block asks first"
    row = next(line for line in both.splitlines() if line.startswith("| task arithmetic (θ_base + λ·τ_cpt)"))
    mine = next(line for line in own.splitlines() if line.startswith("| task arithmetic (θ_base + λ·τ_cpt)"))
    delta_ci = re.search(r"\| ([+-]\d+\.\d \[[+-]\d+\.\d, [+-]\d+\.\d\]) \|", mine)[1]
    verdict = "higher" if "| higher (Holm p < 0.05) |" in mine else "no difference detected"
    size = mine.rstrip(" |").split(" | ")[-1]  # "claimed Δ vs CI"
    assert size == "excluded: interval above", "the demo's gain is larger than the claimed 2-5 points"
    a_cell, b_cell = row.split(" | ")[2:4]
    assert a_cell == f"{delta_ci}: {verdict}; claimed size excluded (interval above)", "a's own claims table's test"
    assert b_cell.rstrip(" |") == "identical predictions (the same model; no test)"
    assert "| `a` (120 test items) | `b` (no claim tested) |" in both.splitlines()[0]
    ties = next(line for line in both.splitlines() if line.startswith("| TIES, then fine-tuning"))
    assert ties.endswith("| not run | not run |"), "a claim whose methods a record did not run"
    assert "Nothing is pooled or corrected across records" in both
    # the memo is keyed by the record's files: a file written again is tested again
    predictions = results / "a" / "predictions"
    target = next(predictions.glob("*.json"))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    records.record_table("a", results, part="claims")
    assert calls == ["a", "b", "a"]
    with pytest.raises(DataError, match=r"'a\+b': several records side by side exist only for the claims part"):
        records.record_table("a+b", results, part="methods")
    with pytest.raises(DataError, match=r"no_such/record.json: no such record"):
        records.record_table("a+no_such", results, part="claims")
    with pytest.raises(DataError, match=r"records 'a\+a': a record is named twice"):
        records.record_table("a+a", results, part="claims")


def test_readme_tables_match_the_committed_records():
    """Every results block in README.md is exactly what `cmmerge results readme` generates from results/."""
    readme = ROOT / "README.md"
    assert records._BLOCK.search(readme.read_text()), "README.md has no generated results block"
    stale = records.render_readme(readme, ROOT / "results", check=True)
    assert stale == [], f"README results blocks {stale} differ from their records: run `cmmerge results readme`"


def test_cli_check_exits_non_zero_on_a_stale_block(run_dir, tmp_path):
    records.record_run("demo_run", run_dir, check_workspace=False)
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:demo_run -->\nstale\n<!-- /results:demo_run -->\n")
    out = subprocess.run(
        [sys.executable, "-m", "cmmerge", "results", "readme", "--check", "--readme", str(readme)],
        cwd=run_dir,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "results blocks demo_run differ from their records" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_readme_parts_adamergex_and_a_missing_curve(run_dir, tmp_path):
    # the AdaMergeX summary and scores have the report's structure: reuse the run's as theirs
    (run_dir / "metrics" / "adamergex").mkdir()
    shutil.copy(run_dir / "metrics" / "summary.json", run_dir / "metrics" / "adamergex" / "summary.json")
    shutil.copytree(run_dir / "metrics" / "eval", run_dir / "metrics" / "adamergex" / "eval")
    records.record_run("demo_run", run_dir, check_workspace=False)
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- results:demo_run -->\n<!-- /results:demo_run -->\n"
        "<!-- results:demo_run:adamergex -->\nold\n<!-- /results:demo_run:adamergex -->\n"
    )
    assert records.render_readme(readme, run_dir / "results") == ["demo_run", "demo_run:adamergex"]
    text = readme.read_text()
    adamergex = records.record_table("demo_run", run_dir / "results", "adamergex")
    assert adamergex in text and "`lora_adamergex`: that adapter + λ·(reference_cm − reference_en)" in adamergex
    assert text.endswith("<!-- /results:demo_run:adamergex -->\n")
    with pytest.raises(DataError, match=r"curve_summary.json: record 'demo_run' has no curve results"):
        records.record_table("demo_run", run_dir / "results", "curve")
    with pytest.raises(DataError, match=r"record part .nope.: expected one of methods, .*, timings"):
        records.record_table("demo_run", run_dir / "results", "nope")


def test_the_claims_name_the_lambda_the_sweep_chose(run_dir):
    from cmmerge.claims import sweep_note

    sweep = [
        {"merge": "ta", "lambda": lam, "dev_macro_f1": dev, "dev_seed1": dev, "test_macro_f1": 0.5}
        for lam, dev in ((0.0, 0.5723), (0.5, 0.5485), (1.0, 0.5723))
    ]
    write_json(run_dir / "metrics" / "sweep.json", sweep)
    records.record_run("demo_run", run_dir, check_workspace=False)
    assert sweep_note(run_dir / "results" / "demo_run") == (
        " The sweep chose λ = 0 for `merges.ta` on dev (dev macro-F1 × 100 per λ: 0 → 57.2, 0.5 → 54.9, 1 → 57.2; "
        "fine-tuning seed 1)."
    ), "a tie goes to the first λ, as the merge stage chooses"


def test_claims_are_tested_on_the_records_predictions(run_dir, tmp_path):
    from cmmerge.claims import _size_in_interval, _verdict, claims_table, evaluate_claims, load_claims

    records.record_run("demo_run", run_dir, check_workspace=False)
    path = tmp_path / "claims.yaml"
    base = {"source": "a paper", "claim": "x"}
    path.write_text(
        yaml.safe_dump(
            {
                "claims": [
                    {**base, "id": "ta", "method": "ta_ft", "versus": "full_ft", "low": 2.0, "high": 5.0},
                    {**base, "id": "near", "method": "near_ft", "versus": "full_ft"},
                    {**base, "id": "absent", "method": "swap_ft", "versus": "full_ft"},
                    {**base, "id": "twin", "method": "twin_ft", "versus": "full_ft", "low": 2.0, "high": 5.0},
                ]
            }
        )
    )
    # a method that trained the same model as full_ft (as ta_ft does when λ = 0 is chosen on dev)
    twin = read_json(run_dir / "results" / "demo_run" / "predictions" / "full_ft.json")
    write_json(run_dir / "results" / "demo_run" / "predictions" / "twin_ft.json", twin)
    # and one that differs from it on one item of one seed: a difference far too small to detect
    near = copy.deepcopy(twin)
    seed, codes = next(iter(near["sets"]["task"].items()))
    near["sets"]["task"][seed] = ("1" if codes[0] == "0" else "0") + codes[1:]
    write_json(run_dir / "results" / "demo_run" / "predictions" / "near_ft.json", near)
    rows = evaluate_claims(run_dir / "results" / "demo_run", load_claims(path), n_boot=500)
    summary = read_json(run_dir / "metrics" / "summary.json")["methods"]
    ta, near, absent, twin = rows
    assert twin["status"] == "identical" and "p_holm" not in twin
    assert ta["delta_macro_f1"] == pytest.approx(summary["ta_ft"]["task"]["mean"] - summary["full_ft"]["task"]["mean"])
    assert ta["delta_ci95_low"] > 0 and ta["p_holm"] >= ta["p_value"]
    assert near["status"] == "tested" and near["p_holm"] >= 0.05
    assert absent["status"] == "not run (swap_ft not in this record)"
    table = claims_table(run_dir / "results" / "demo_run", load_claims(path), n_boot=500)
    assert ta["p_holm"] < 0.05, "the demo's ta_ft gain is large enough to stay significant after Holm"
    assert "higher (Holm p < 0.05)" in table and "no difference detected at Holm-corrected 0.05" in table
    assert "no test: the two methods predict alike on every seed and item (as the same model would)" in table
    assert "Holm-corrected over the 2 claims tested" in table, "an identical pair is not a test"
    assert "The sweep chose" not in table, "this record has no sweep"
    assert "The runs use the embedded English-only, uncased 22.7M-parameter encoder" in table
    xlmr = "FacebookAI/xlm-roberta-base"
    other = claims_table(run_dir / "results" / "demo_run", load_claims(path), 500, 0, 0.01, xlmr)
    assert "The runs use `FacebookAI/xlm-roberta-base`" in other and "Holm-corrected 0.01" in other
    # the verdict follows the Holm-corrected p, not the unadjusted interval: a gain whose own test has p = 0.03
    # but whose corrected p is 0.06 is no detected difference; a corrected p of 0.01 on a loss says "lower"
    assert _verdict(+1.2, 0.06).startswith("no difference detected")
    assert _verdict(-1.2, 0.01) == "lower (Holm p < 0.05)" and _verdict(+0.4, 0.049) == "higher (Holm p < 0.05)"
    # a claimed size is "not excluded" when the two ranges overlap, open ends included; an interval wholly on one
    # side excludes it and says which; the claimed bounds are exclusive, so touching one excludes it
    claim = load_claims(path)[0]
    assert (claim.low, claim.high) == (2.0, 5.0)
    assert _size_in_interval(claim, 1.0, 2.5) == "not excluded"
    assert _size_in_interval(claim, 5.5, 9.0) == "excluded: interval above"
    assert _size_in_interval(claim, -3.0, 2.0) == "excluded: interval below"
    path.write_text(yaml.safe_dump({"claims": [{**base, "id": "a", "method": "m", "versus": "v"}] * 2}))
    with pytest.raises(DataError, match=r"claim ids repeat: \['a'\]"):
        load_claims(path)
    path.write_text(yaml.safe_dump({"claims": [{**base, "id": "self", "method": "m", "versus": "m"}]}))
    with pytest.raises(DataError, match=r"claims\[0\] \('self'\) compares 'm' with itself"):
        load_claims(path)


def test_cpt_part_shows_the_validation_curve_and_its_figure(run_dir, tmp_path):
    curves = run_dir / "metrics" / "train" / "cpt" / "plots" / "metrics"
    for name, rows in (("eval", [(100, 5.8), (200, 4.9), (300, 5.0), (400, 5.1)]), ("train", [(50, 7.0), (400, 4.0)])):
        (curves / name).mkdir(parents=True)
        (curves / name / "loss.tsv").write_text("step\tloss\n" + "".join(f"{s}\t{v}\n" for s, v in rows))
    write_json(run_dir / "metrics" / "cpt.json", {"train_blocks": 10, "train_tokens": 640, "epochs_run": 4,
                                                   "stopped_early": True})  # fmt: skip
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["cpt"]["early_stopping_patience"] = 2
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
    records.record_run("demo_run", run_dir, check_workspace=False)
    table = records.record_table("demo_run", run_dir / "results", "cpt")
    assert "| 2 (kept) | 200 | 4.900 |" in table and "| 4 | 400 | 5.100 |" in table
    assert "stopped by its validation loss after 4 evaluations, the last 2 without improvement" in table
    params["cpt"]["early_stopping_patience"] = 3  # the same curve did not exhaust a patience of 3: the budget ended it
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
    records.record_run("budget_run", run_dir, check_workspace=False)
    table = records.record_table("budget_run", run_dir / "results", "cpt")
    assert "ran all 4 evaluations of its budget without 3 in a row failing to improve" in table
    assert "so the budget, not convergence, ended it; the validation loss fell by 0.700 over its last 3" in table
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:demo_run:cpt -->\n<!-- /results:demo_run:cpt -->\n")
    figure = tmp_path / "docs" / "figures" / "demo_run_cpt.svg"
    assert records.render_readme(readme, run_dir / "results", check=True) == [str(figure), "demo_run:cpt"]
    assert not figure.exists()
    records.render_readme(readme, run_dir / "results")
    assert figure.read_bytes().startswith(b"<?xml") and records.render_readme(readme, run_dir / "results", True) == []


def test_the_adamergex_caption_names_the_task_adapters_recipe(tmp_path):
    grid = {"learning_rates": [1e-3, 3e-3], "epochs": [3, 10], "seeds": [1, 2]}
    params = {"optim": {"learning_rate": "dev", "epochs": "dev"}, "recipe": grid}
    # no recipe record (a run made before the stage wrote one) and no numbers in params: nothing is claimed
    assert records._task_recipe(tmp_path, params) == ""
    assert records._task_recipe(tmp_path, {"optim": {"learning_rate": 1e-3, "epochs": 3}}) == (
        "Both task adapters use the recipe set in params, learning rate 0.001, 3 epochs (not chosen on dev). "
    )
    (tmp_path / "metrics" / "adamergex").mkdir(parents=True)
    chosen = {"learning_rate": 3e-3, "epochs": 10.0, "steps": 320}
    write_json(tmp_path / "metrics" / "adamergex" / "recipe.json", {"chosen": chosen, "grid_cells": 4})
    assert records._task_recipe(tmp_path, params) == (
        "Both task adapters use one recipe, learning rate 0.003, 10 epochs, chosen for `lora_cm` by its code-mixed "
        "dev macro-F1 (mean of seeds 1, 2) among learning rates 0.001, 0.003 × epochs 3, 10. "
    )
