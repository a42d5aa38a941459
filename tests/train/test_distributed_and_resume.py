"""Training under `accelerate launch` (2 CPU processes, gloo) and resuming a killed run from its checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from cmmerge.data.cleaning import CleaningParams
from cmmerge.data.corpus import CorpusParams, build_corpus
from cmmerge.data.loaders import DatasetSpec
from cmmerge.data.prepare import PrepareParams, prepare
from cmmerge.models import export_base

pytestmark = pytest.mark.slow  # starts multi-process training and kills runs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEMO = ROOT / "data" / "demo"
SCRIPT = HERE / "run_tiny_training.py"


@pytest.fixture(scope="module")
def work(tiny_models, tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("dist")
    export_base(str(tiny_models["xlmr"]), w / "base")
    prepare(
        PrepareParams(task=DatasetSpec(str(DEMO / "hinglish_sentiment")), cleaning=CleaningParams(), max_train=200),
        w / "prepared",
        w / "data.json",
    )
    build_corpus(
        CorpusParams(real=str(DEMO / "corpus"), mix="real", max_lines=600),
        None,
        w / "prepared",
        None,
        w / "corpus",
        w / "corpus.json",
    )
    return w


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _losses(live: Path) -> list[float]:
    rows = (live / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()[1:]
    return [float(r.split("\t")[1]) for r in rows]


def _summary(stdout: str) -> dict:
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("SUMMARY "))[8:])


@pytest.mark.parametrize("config", ["ddp.yaml", "fsdp.yaml"])
def test_two_cpu_processes_train_like_one(work, tmp_path, config):
    steps = "30"
    args = ["cpt", str(work / "base"), str(work / "corpus"), "OUT", "LIVE", steps, "0"]
    single = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *[a.replace("OUT", str(tmp_path / "one")).replace("LIVE", str(tmp_path / "live1")) for a in args],
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    launcher = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "configs/accelerate" / config),
        "--main_process_port",
        "29533",
    ]
    ddp = subprocess.run(
        [
            *launcher,
            str(SCRIPT),
            *[a.replace("OUT", str(tmp_path / "two")).replace("LIVE", str(tmp_path / "live2")) for a in args],
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    s1, s2 = _summary(single.stdout), _summary(ddp.stdout)
    assert s1["world_size"] == 1 and s2["world_size"] == 2
    assert ddp.stdout.count("SUMMARY ") == 2, "both ranks finish"
    assert (tmp_path / "two" / "model.safetensors").is_file() and not list(tmp_path.glob(".two.tmp-*"))
    # the saved checkpoint is whole (FSDP gathers the shards), not one rank's slice
    with (
        safe_open(tmp_path / "two" / "model.safetensors", "pt") as two,
        safe_open(tmp_path / "one" / "model.safetensors", "pt") as one,
    ):
        names = one.keys()
        assert set(two.keys()) == set(names)
        assert all(two.get_slice(k).get_shape() == one.get_slice(k).get_shape() for k in names)
    for live in ("live1", "live2"):
        loss = _losses(tmp_path / live)
        assert len(loss) == int(steps)
        first, last = sum(loss[:5]) / 5, sum(loss[-5:]) / 5
        assert last < first - 0.1, f"{live}: loss did not fall ({first:.3f} -> {last:.3f})"


def _shrunk(src: Path, dst: Path, name: str, lines: int) -> Path:
    """A copy of the data folder ``src`` whose file ``name`` keeps its first ``lines`` lines: short epochs."""
    shutil.copytree(src, dst)
    path = dst / name
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:lines]))
    return dst


def _assert_same_weights(got: Path, want: Path) -> None:
    import torch
    from safetensors.torch import load_file

    a, b = load_file(got / "model.safetensors"), load_file(want / "model.safetensors")
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ from the uninterrupted run, e.g. {differ[:3]}"


# kind, data, steps, checkpoint_steps, kill at step, the checkpoint resumed from
KILLS = {
    # mid-epoch: the MLM collator's generator state (masks) must come back, and it is one batch ahead
    # of training when saved (the dataloader collates the next batch early)
    "cpt-mid-epoch": ("cpt", "corpus", 30, 5, 13, 10),
    # 18 steps per epoch: checkpoint 18 ends epoch 1; its RNG states must include the end-of-epoch
    # evaluation's draws (validation masks, dataloader seed), or epoch 2 is trained with other ones
    "cpt-epoch-end": ("cpt", "small-corpus", 40, 9, 20, 18),
    # 10 steps per epoch: checkpoint 10 ends epoch 1 (dropout draws after the dev evaluation)
    "finetune-epoch-end": ("finetune", "small-prepared", 30, 5, 13, 10),
}


@pytest.mark.parametrize("case", list(KILLS))
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_run(work, tmp_path, case):
    kind, data, steps, every, kill_at, resumed_from = KILLS[case]
    if data == "small-corpus":
        folder = _shrunk(work / "corpus", tmp_path / "data", "train.txt", 100)
    elif data == "small-prepared":
        folder = _shrunk(work / "prepared", tmp_path / "data", "task/train.jsonl", 40)
    else:
        folder = work / data

    def command(out: Path, live: Path, *kill: int) -> list[str]:
        args = [kind, work / "base", folder, out, live, steps, every, *kill]
        return [sys.executable, str(SCRIPT), *map(str, args)]

    def run(*args) -> subprocess.CompletedProcess:
        return subprocess.run(command(*args), env=_env(), capture_output=True, text=True, timeout=600)

    whole = run(tmp_path / "whole", tmp_path / "live-whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    out, live = tmp_path / "run", tmp_path / "live"
    killed = run(out, live, kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not out.exists(), "a killed run leaves no output"
    checkpoints = out.parent / ".run.checkpoints"
    complete = [p for p in checkpoints.glob("checkpoint-*/") if (p / "trainer_state.json").is_file()]
    assert max(int(p.name.split("-")[1]) for p in complete) == resumed_from
    last = checkpoints / f"checkpoint-{resumed_from}"
    if kind == "cpt":
        assert (last / "collator_rng.safetensors").is_file(), "the MLM masks' generator is in the checkpoint"
    if case.endswith("epoch-end"):
        history = json.loads((last / "trainer_state.json").read_text())["log_history"]
        assert any("eval_loss" in h and h["step"] == resumed_from for h in history), "saved after the evaluation"

    again = run(out, live)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {last}" in again.stderr
    assert _summary(again.stdout)["steps"] == steps
    assert not checkpoints.exists(), "checkpoints are removed once the output is written"
    _assert_same_weights(out, tmp_path / "whole")
    logged = [int(r.split("\t")[0]) for r in (live / "plots/metrics/train/loss.tsv").read_text().splitlines()[1:]]
    assert logged[-1] == steps and max(logged[:-1]) < steps


def _tsv(live: Path, name: str) -> list[tuple[int, float]]:
    rows = (live / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()[1:]
    return [(int(float(r.split("\t")[0])), float(r.split("\t")[1])) for r in rows]


@pytest.mark.slow
def test_a_resumed_cpt_stops_where_an_uninterrupted_one_does(work, tmp_path):
    """Killed one evaluation after its best epoch, or after its stopping rule fired but before writing its output,
    CPT with early stopping resumes to the run an uninterrupted one makes: the same evaluations, the same kept
    weights, and curves with one row per step (a resumed run once restarted the patience count, and its curves
    kept the killed run's rows past the checkpoint twice)."""
    folder = _shrunk(work / "corpus", tmp_path / "data", "train.txt", 100)  # 18 steps an epoch
    patience, epochs = 2, 10

    def run(out: Path, live: Path, kill: str = "-") -> subprocess.CompletedProcess:
        args = ["cpt", work / "base", folder, out, live, epochs * 18, 0, kill, patience]
        command = [sys.executable, str(SCRIPT), *map(str, args)]
        return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)

    whole = run(tmp_path / "whole", tmp_path / "live-whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    ran = _summary(whole.stdout)
    per_epoch = ran["steps"] // ran["epochs_run"]
    best = ran["best_epoch"]
    assert per_epoch == 18 and ran["stopped_early"] and ran["epochs_run"] == best + patience < epochs, ran
    reference = {name: _tsv(tmp_path / "live-whole", name) for name in ("eval/loss", "train/loss")}
    # one evaluation after the best (the patience count at 1), one step after the first training-loss row past
    # that epoch's checkpoint (the row a resumed run logs again, averaged over fewer steps), and after the rule
    # fired (the output not written)
    checkpoint = (best + 1) * per_epoch
    logged = next(s for s, _ in reference["train/loss"] if s > checkpoint)
    assert logged % per_epoch and logged + 1 < checkpoint + per_epoch, (checkpoint, logged)
    for case, kill in (("one-after-best", str(logged + 1)), ("fired", f"save:{ran['steps']}")):
        out, live = tmp_path / case, tmp_path / f"live-{case}"
        killed = run(out, live, kill)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        again = run(out, live)
        assert again.returncode == 0, again.stderr[-3000:]
        resumed = _summary(again.stdout)
        for key in ("epochs_run", "best_epoch", "stopped_early", "steps", "valid_loss"):
            assert resumed[key] == ran[key], (case, key, resumed[key], ran[key])
        _assert_same_weights(out, tmp_path / "whole")
        for name, rows in reference.items():
            assert _tsv(live, name) == rows, (case, name)
        assert json.loads((live / "metrics.json").read_text()) == json.loads(
            (tmp_path / "live-whole" / "metrics.json").read_text()
        ), case
    assert resumed["train_loss"] is None, "the run that resumed after its rule fired trained no step"


def test_changed_params_never_resume_a_stale_checkpoint(work, tmp_path):
    from cmmerge.train.common import checkpoint_dir, fingerprint, latest_checkpoint, reset_checkpoints

    out = tmp_path / "ft"
    ckpt = checkpoint_dir(out)
    reset_checkpoints(ckpt, fingerprint({"lr": 1}, work / "base"), resume=True)
    (ckpt / "checkpoint-7").mkdir()
    (ckpt / "checkpoint-7" / "trainer_state.json").write_text("{}")
    (ckpt / "checkpoint-9").mkdir()  # being written when the run was killed: no trainer state yet
    reset_checkpoints(ckpt, fingerprint({"lr": 1}, work / "base"), resume=True)
    assert latest_checkpoint(ckpt) == str(ckpt / "checkpoint-7")
    assert not (ckpt / "checkpoint-9").exists()
    reset_checkpoints(ckpt, fingerprint({"lr": 2}, work / "base"), resume=True)
    assert latest_checkpoint(ckpt) is None


def test_fingerprint_sees_changed_bytes_through_its_memo(tmp_path):
    """Input digests are memoised per process under size and mtime: a rewritten file is hashed again."""
    import os

    from cmmerge.train.common import content_digest, fingerprint

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("same size 1")
    first = fingerprint({"lr": 1}, folder)
    assert fingerprint({"lr": 1}, folder) == first and fingerprint({"lr": 2}, folder) != first
    (folder / "a.txt").write_text("same size 2")
    os.utime(folder / "a.txt", ns=(1, 1))  # a different mtime, as any rewrite has
    assert fingerprint({"lr": 1}, folder) != first
    (folder / "b.txt").write_text("")
    assert content_digest(folder) != content_digest(folder / "a.txt")
    (tmp_path / "renamed").mkdir()
    (tmp_path / "renamed" / "a.txt").write_text("same size 2")
    os.utime(tmp_path / "renamed" / "a.txt", ns=(1, 1))
    assert content_digest(tmp_path / "renamed") == content_digest(tmp_path / "renamed"), "stable"
    assert content_digest(tmp_path / "renamed") != content_digest(folder), "b.txt is part of the folder"


def test_a_model_folder_counts_by_its_tensor_values_not_its_bytes(tmp_path):
    """A model counts by what it computes: -0.0 and 0.0, the order and metadata of a safetensors file, and a
    provenance file (a merge manifest) do not change its digest; any other value, name or config does."""
    import torch
    from safetensors.torch import save_file

    from cmmerge.train.common import content_digest

    def model(name: str, w: list[float], extra: dict | None = None, meta: dict | None = None, cfg: str = "{}"):
        folder = tmp_path / name
        folder.mkdir()
        tensors = {"b": torch.tensor([1.0, 2.0]), "w": torch.tensor(w), **(extra or {})}
        save_file(tensors, folder / "model.safetensors", metadata=meta)
        (folder / "config.json").write_text(cfg)
        return folder

    base = model("base", [-0.0, 1.5])
    merged = model("merged", [0.0, 1.5], meta={"format": "pt"})
    (merged / "merge_manifest.json").write_text('{"method": "task_arithmetic"}')
    assert (base / "model.safetensors").read_bytes() != (merged / "model.safetensors").read_bytes()
    assert content_digest(base) == content_digest(merged)
    for other in (
        model("value", [0.0, 1.5000001]),
        model("dtype", [0.0, 1.5], extra={"b": torch.tensor([1.0, 2.0], dtype=torch.float64)}),
        model("name", [0.0, 1.5], extra={"c": torch.tensor([0.0])}),
        model("config", [0.0, 1.5], cfg='{"hidden_act": "relu"}'),
    ):
        assert content_digest(other) != content_digest(base), other.name
