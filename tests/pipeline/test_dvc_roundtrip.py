"""The real pipeline under DVC on a tiny random model: repro, exp run with a changed λ, metrics diff,
and push/pull through a local remote into a second clone that then has nothing to reproduce.

One throw-away copy of the repository runs every stage for real (`dvc repro`) with the tiny XLM-R
and a handful of optimiser steps; the module's tests then ask DVC about it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from .repo import add_soup_merge, copy_repo, dvc, edit_params, git

pytestmark = pytest.mark.slow  # builds and runs a tiny DVC pipeline several times (minutes)

METHODS = {
    "full_ft": {"init": "models/base", "train": "data/prepared/task"},
    "ta_ft": {"init": "models/merged/ta", "train": "data/prepared/task"},
    "ties_ft": {"init": "models/merged/ties", "train": "data/prepared/task"},
}
TINY_OPTIM = {"max_steps": 2, "batch_size": 8, "learning_rate": 1.0e-3, "logging_steps": 1}


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_models, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("dvc")
    repo = copy_repo(root / "repo")
    edit_params(
        repo,
        **{
            "model.name": str(tiny_models["xlmr"]),
            "prepare.max_train": 48,
            "prepare.max_english": 48,
            "corpus.max_lines": 200,
            "cpt.max_length": 32,
            "cpt.head_warmup_steps": 0,  # two steps only: let them reach the encoder, so τ_cpt is not zero there
            "cpt.optim": TINY_OPTIM,
            "finetune.seeds": [1],
            "finetune.max_length": 32,
            "finetune.optim": TINY_OPTIM,
            "methods": METHODS,
            "report.n_boot": 100,
            "sweep.lambdas": [0.0, 1.0],
            "recipe.learning_rates": [1e-3],
            "recipe.epochs": [1, 2],
            "curve.sizes": [24, 48],
            "adamergex.optim": TINY_OPTIM,
            "adamergex.reference.optim": TINY_OPTIM,
        },
    )
    (repo / "dvc.lock").unlink(missing_ok=True)
    trace = root / "params_read"  # every params section each stage script reads (cmmerge.params.TRACE_ENV)
    os.environ["CMMERGE_TRACE_PARAMS"] = str(trace)
    try:
        first = dvc(repo, "repro")
    finally:
        del os.environ["CMMERGE_TRACE_PARAMS"]
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tiny pipeline")
    remote = root / "remote"
    dvc(repo, "remote", "add", "-d", "local", str(remote))
    git(repo, "commit", "-qam", "remote")
    dvc(repo, "push")
    return {"repo": repo, "remote": remote, "root": root, "first": first.stdout, "trace": trace}


def test_repro_runs_every_stage_and_writes_the_contracts(tiny_pipeline):
    repo = tiny_pipeline["repo"]
    expected = {
        "base",
        "prepare",
        "prepare_transfer@en_es",
        "synthesize",
        "corpus",
        "cpt",
        "recipe",
        "finetune_en",
        *(f"merge@{name}" for name in ("ta", "ties", "ties_cpt", "dare", "swap")),
        "sweep",
        "adamergex",
        "curve",
        "report",
        "plots",
    } | {f"{s}@{m}" for s in ("finetune", "evaluate") for m in METHODS}
    assert ran_stages(tiny_pipeline["first"]) == expected
    for method in METHODS:
        metrics = json.loads((repo / f"metrics/eval/{method}.json").read_text())
        assert {"macro_f1", "weighted_f1", "accuracy", "n"} <= set(metrics)
        assert {"macro_f1", "weighted_f1", "accuracy", "n"} <= set(metrics["transfer"]["en_es"])
    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert set(summary["methods"]) == set(METHODS)
    for entry in summary["methods"].values():
        assert {"mean", "std", "ci95_low", "ci95_high", "ci95_seeds_items_low"} <= set(entry["task"])
    assert "nothing to reproduce" in dvc(repo, "repro").stdout.lower() or not ran_stages(dvc(repo, "repro").stdout)


def _only_copied(repo: Path, stage: str) -> bool:
    """Whether every seed of ``finetune@<method>`` is a model of the recipe stage's chosen cell (copied, not
    trained: the same training fingerprint)."""
    summaries = repo.glob("models/recipe_chosen/seed*/train_summary.json")
    chosen = {json.loads(p.read_text())["fingerprint"] for p in summaries}
    seeds = list(repo.glob(f"models/finetune/{stage.split('@')[1]}/seed*/train_summary.json"))
    return bool(seeds) and all(json.loads(p.read_text())["fingerprint"] in chosen for p in seeds)


def test_every_stage_that_ran_left_its_run_time(tiny_pipeline):
    """The stage runner times each stage DVC runs (DVC_STAGE); a record takes those of its own params."""
    import yaml

    from cmmerge.checksums import sha256_file
    from cmmerge.records import _timings
    from cmmerge.runner import stage_params, stage_params_sha256

    repo = tiny_pipeline["repo"]
    digest = sha256_file(repo / "params.yaml")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    for stage, locked in lock["stages"].items():  # the runner's key is the stage's params as DVC resolved them
        assert stage_params(repo, stage) == locked.get("params", {}).get("params.yaml", {}), stage
    for stage in ran_stages(tiny_pipeline["first"]):
        entry = json.loads((repo / ".cmmerge" / "timings" / f"{stage}.json").read_text())
        assert entry["stage"] == stage and entry["params_sha256"] == digest
        assert entry["stage_params_sha256"] == stage_params_sha256(repo, stage)
        assert 0 <= entry["seconds"] < 600 and entry["cpu_seconds"] >= 0 and entry["cpus"] == os.cpu_count()
        # training: never a rounded-away fraction of a second (a finetune stage that only copied the recipe
        # stage's models of its seeds trained nothing, and may take less)
        if stage == "cpt" or (stage.startswith("finetune@") and not _only_copied(repo, stage)):
            assert entry["seconds"] > 0 and entry["cpu_seconds"] > 0, entry
    assert any(s.startswith("finetune@") and not _only_copied(repo, s) for s in ran_stages(tiny_pipeline["first"]))
    timings = _timings(repo, lock)
    assert timings["unmeasured"] == [] and set(timings["stages"]) == ran_stages(tiny_pipeline["first"])


def test_every_stage_reads_only_the_params_it_lists(tiny_pipeline):
    """DVC reruns a stage only when a param it lists changes: a section read but not listed would be a change DVC
    does not see. Each stage script ran with CMMERGE_TRACE_PARAMS, which records every section it read."""
    import yaml

    from .test_stage_wiring import stage_script

    stages = yaml.safe_load((tiny_pipeline["repo"] / "dvc.yaml").read_text())["stages"]
    checked = 0
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        trace = tiny_pipeline["trace"] / f"{stage_script(stage).stem}.txt"
        assert trace.is_file(), f"stage {name!r} read no params at all (or did not run)"
        read = set(trace.read_text().split())
        listed = {str(p).split(".")[0] for p in stage.get("params", [])}
        assert read <= listed, f"stage {name!r} reads {sorted(read - listed)}, which its params in dvc.yaml omit"
        checked += 1
    assert checked == len(stages)


def test_model_outs_are_linked_from_the_cache_not_copied(tiny_pipeline):
    repo = tiny_pipeline["repo"]
    weights = repo / "models/base/model.safetensors"
    cached = [p for p in (repo / ".dvc/cache").rglob("*") if p.is_file() and p.stat().st_ino == weights.stat().st_ino]
    assert weights.is_symlink() or cached, "models/base was copied into the workspace instead of linked"
    tracked = git(repo, "ls-files").splitlines()
    assert not [f for f in tracked if f.startswith("models/") or f.endswith(".safetensors")]


def test_pull_into_a_second_clone_leaves_nothing_to_reproduce(tiny_pipeline):
    clone = tiny_pipeline["root"] / "clone"
    git(tiny_pipeline["root"], "clone", "-q", str(tiny_pipeline["repo"]), str(clone))
    assert not (clone / "models/base").exists()
    dvc(clone, "pull")
    assert (clone / "models/merged/ta/model.safetensors").is_file()
    status = dvc(clone, "status", "--json").stdout.strip()
    assert json.loads(status or "{}") == {}
    assert ran_stages(dvc(clone, "repro").stdout) == set()


def test_exp_run_with_new_lambda_reruns_only_what_it_must(tiny_pipeline):
    repo = tiny_pipeline["repo"]
    out = dvc(repo, "exp", "run", "-S", "merges.ta.parameters.lambda=0.3").stdout
    ran = ran_stages(out)
    # the TIES and swap outputs are byte-identical (each manifest holds only its own params), so ties_ft is
    # not rerun; the report (and plots) rerun only if the new ta_ft evaluation differs (two optimiser steps on a tiny
    # model may leave every prediction as it was, and DVC then rightly stops there)
    # the learning curve reruns too (ta_ft starts from the merge), but only its ta_ft cells train again
    # the sweep reads the entry it sweeps, so it reruns, through its kept cells, to the same record
    must = {"merge@ta", "sweep", "finetune@ta_ft", "evaluate@ta_ft", "curve"}
    assert must <= ran <= must | {"report", "plots"}
    diff = json.loads(dvc(repo, "metrics", "diff", "--json").stdout)
    changed_evals = {path for path in diff if path.startswith("metrics/eval/")}
    assert changed_evals <= {"metrics/eval/ta_ft.json"}
    assert "report" in ran or not changed_evals
    assert not {"metrics/cpt.json", "metrics/data.json", "metrics/corpus.json"} & set(diff)
    # only ta_ft's scores change; other methods' Holm-adjusted p-values may move with ta_ft's raw p-value
    changed = [key.split(".") for key in diff.get("metrics/summary.json", {})]
    assert all(k[1] == "ta_ft" or k[-1] == "p_holm" for k in changed if k[0] in ("methods", "predicted_labels"))
    assert {k[0] for k in changed} <= {"methods", "predicted_labels"}
    params = json.loads(dvc(repo, "params", "diff", "--json").stdout)
    change = params["params.yaml"]["merges.ta.parameters.lambda"]
    assert (change["old"], change["new"]) == (0.5, 0.3)


def test_a_new_merge_and_method_are_configuration_only(tiny_pipeline):
    """A merge starting point and a method using it, added to params.yaml alone: `dvc repro` runs their stages
    and the tables that list every method, and trains nothing that existed before."""
    root = tiny_pipeline["root"]
    clone = root / "new_merge"
    git(root, "clone", "-q", str(tiny_pipeline["repo"]), str(clone))
    dvc(clone, "pull")
    add_soup_merge(clone)
    ran = ran_stages(dvc(clone, "repro").stdout)
    new = {"merge@soup", "finetune@soup_ft", "evaluate@soup_ft"}
    # the curve lists the methods section; its own methods' cells are retrained in a fresh clone (no kept cells)
    assert new <= ran <= new | {"report", "plots", "curve"}
    assert (clone / "models/merged/soup/model.safetensors").is_file()
    assert "soup_ft" in json.loads((clone / "metrics/summary.json").read_text())["methods"]


def test_pr_report_diffs_a_lambda_change_against_the_base(tiny_pipeline):
    """The pull-request comment for a commit that changes the task-arithmetic λ: the metrics diff and the changed
    methods name exactly what is downstream of the task-arithmetic merge (ties/swap outputs are unchanged)."""
    import subprocess
    import sys

    root = tiny_pipeline["root"]
    branch = root / "branch"
    git(root, "clone", "-q", str(tiny_pipeline["repo"]), str(branch))
    dvc(branch, "pull")
    # the fixture's two optimiser steps leave a tiny model's predictions unmoved by λ: train enough to see λ
    edit_params(branch, **{"finetune.optim": {**TINY_OPTIM, "max_steps": 40, "learning_rate": 5e-3}})
    dvc(branch, "repro")
    git(branch, "commit", "-qam", "a longer recipe")
    base = git(branch, "rev-parse", "HEAD").strip()
    edit_params(branch, **{"merges.ta.parameters.lambda": 40.0})
    ran = ran_stages(dvc(branch, "repro").stdout)
    assert {"merge@ta", "finetune@ta_ft", "evaluate@ta_ft"} <= ran
    assert not {"merge@ties", "finetune@ties_ft"} & ran
    git(branch, "commit", "-qam", "lambda 40")
    done = subprocess.run(
        [sys.executable, "-m", "cmmerge", "pr-report", "--base", base, "--out", "pr"],
        cwd=branch,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    report = (branch / "pr" / "report.md").read_text()
    changed_section = report.split("### Methods whose in-pair macro-F1 changed")[1].split("###")[0]
    assert re.findall(r"\| `(\w+)` \|", changed_section) == ["ta_ft"]
    diff_section = report.split("### `dvc metrics diff`")[1].split("###")[0]
    evals = set(re.findall(r"metrics/eval/(\w+)\.json", diff_section))
    assert evals == {"ta_ft"}, diff_section
    assert "### Results table: base" in report and "### Results table: this branch" in report
    # a changed PNG is linked from both sides, and the files are there for CML to upload
    for link in re.findall(r"\]\((images/[^)]+)\)", report):
        assert (branch / "pr" / link).is_file()


def test_queued_variants_run_in_temporary_copies_with_the_registered_data(tiny_pipeline, monkeypatch):
    """`cmmerge exp run CONFIG -- --queue` twice, `dvc queue start -j 2`: both variants finish, though the task data
    lives in git-ignored data/real/ (where `cmmerge data get` writes), which a queued run's copy lacks unless
    copied in; `dvc exp show` lists both with their metrics. The learning curve's kept cells (git-ignored too) are
    copied in as well: a λ variant reuses the `full_ft` cells the workspace run trained and retrains only `ta_ft`'s."""
    import shutil
    import subprocess
    import sys
    import time

    root = tiny_pipeline["root"]
    repo = root / "queue"
    git(root, "clone", "-q", str(tiny_pipeline["repo"]), str(repo))
    dvc(repo, "pull")
    shutil.copytree(repo / "data/demo/hinglish_sentiment", repo / "data/real/demo_task")
    assert "data/real" in git(repo, "check-ignore", "-v", "data/real/demo_task/train.jsonl")
    edit_params(repo, **{"prepare.task.path": "data/real/demo_task", "curve.sizes": [24]})
    git(repo, "commit", "-qam", "task data from data/real")
    dvc(repo, "repro")  # the workspace run: the curve keeps its cells in git-ignored models/curve/cells
    assert sorted(p.name for p in (repo / "models/curve/cells/n24").iterdir()) == ["full_ft", "ta_ft"]
    config = repo / "variant.yaml"
    config.write_text((repo / "params.yaml").read_text())

    def cmmerge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cmmerge", *args], cwd=repo, capture_output=True, text=True)

    for lam in ("0.2", "0.8"):
        done = cmmerge("exp", "run", "variant.yaml", "--", "--queue", "-S", f"merges.ta.parameters.lambda={lam}")
        assert done.returncode == 0, done.stderr
        assert "--copy-paths data/real" in done.stderr
        assert "--copy-paths models/curve/cells" in done.stderr
    # as README starts the queue: two jobs' spinning OpenMP threads would take the cores from each other
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    dvc(repo, "queue", "start", "-j", "2")
    deadline = time.time() + 900
    while time.time() < deadline:
        status = dvc(repo, "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(10)
    assert "Failed" not in status, status + dvc(repo, "queue", "logs", status.split()[-1], check=False).stdout
    names = [line.split()[1] for line in status.splitlines() if "Success" in line]
    assert len(names) == 2, status
    for name in names:
        log = dvc(repo, "queue", "logs", name).stdout
        assert "curve n=24 full_ft seed 1: kept" in log, log[-3000:]  # the workspace's cell, reused
        assert "curve n=24 ta_ft seed 1: test macro-F1" in log, log[-3000:]  # a new λ: trained again
    shown = json.loads(dvc(repo, "exp", "show", "--json").stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    finished = []
    for exp in exps:
        data = exp["revs"][0]["data"]
        lam = data["params"]["params.yaml"]["data"]["merges"]["ta"]["parameters"]["lambda"]
        metrics = data["metrics"]
        assert "metrics/summary.json" in metrics and "metrics/eval/ta_ft.json" in metrics
        finished.append(lam)
    assert sorted(finished) == [0.2, 0.8]
