"""Bad input to a stage: one clear error line naming the file or key, exit status 2, no traceback, no outs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .repo import copy_repo, edit_params, run, run_stage


@pytest.fixture
def repo(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo", with_git=False)


def _assert_clean_failure(proc, expected: str, outs: list[Path]):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cmmerge: error:")]
    assert len(errors) == 1, proc.stderr
    assert expected in errors[0], errors[0]
    for out in outs:
        assert not out.exists(), f"{out} was left behind"


def test_missing_data_file(repo):
    edit_params(repo, **{"prepare.task.path": "data/demo/no_such_set"})
    proc = run_stage(repo, "prepare")
    _assert_clean_failure(proc, "data/demo/no_such_set: data folder or file not found", [repo / "data/prepared"])


def test_data_file_lacking_the_text_field(repo):
    edit_params(repo, **{"prepare.task.text_field": "tweet"})
    proc = run_stage(repo, "prepare")
    _assert_clean_failure(proc, "has no text field 'tweet'", [repo / "data/prepared"])


def test_missing_split_file(repo):
    (repo / "data/demo/hinglish_sentiment/test.jsonl").unlink()
    proc = run_stage(repo, "prepare")
    _assert_clean_failure(proc, "no 'test' file", [repo / "data/prepared"])


def test_broken_jsonl_line(repo):
    path = repo / "data/demo/hinglish_sentiment/dev.jsonl"
    lines = path.read_text().splitlines()
    lines[4] = '{"id": "x", "text": "unterminated'
    path.write_text("\n".join(lines) + "\n")
    proc = run_stage(repo, "prepare")
    _assert_clean_failure(proc, "dev.jsonl:5: not a JSON object", [repo / "data/prepared"])


def test_unknown_model_name(repo):
    edit_params(repo, **{"model.name": "no-such-org/no-such-model"})
    proc = run_stage(repo, "base")
    _assert_clean_failure(proc, "model 'no-such-org/no-such-model'", [repo / "models/base"])


def test_unknown_model_path(repo):
    edit_params(repo, **{"model.name": "./models/not-there"})
    proc = run_stage(repo, "base")
    _assert_clean_failure(proc, "no such folder", [repo / "models/base"])


@pytest.mark.parametrize(
    ("stage", "key", "value", "expected", "out"),
    [
        ("cpt", "cpt.max_length", "64", "params.yaml: cpt.max_length must be an integer, got '64' (str)", "models/cpt"),
        (
            "finetune_en",
            "finetune.optim.learning_rate",
            "fast",
            "params.yaml: finetune.optim.learning_rate must be a number or one of 'dev', got 'fast' (str)",
            "models/finetune_en",
        ),
        ("synthesize", "synthesize.target_cmi", [30], "synthesize.target_cmi must be a number", "data/synth"),
        ("corpus", "corpus.mix", "everything", "corpus.mix must be one of 'real', 'synthetic', 'both'", "data/corpus"),
    ],
)
def test_params_of_the_wrong_type(repo, stage, key, value, expected, out):
    edit_params(repo, **{key: value})
    proc = run_stage(repo, stage)
    _assert_clean_failure(proc, expected, [repo / out])


def test_good_prepare_writes_counts(repo):
    """The control: the same copy with untouched params prepares the data and counts what it dropped."""
    # prepare reads the configured transfer pair's test set (its dep, written by prepare_transfer@en_es)
    assert run_stage(repo, "prepare_transfer", "en_es").returncode == 0
    proc = run_stage(repo, "prepare")
    assert proc.returncode == 0, proc.stderr
    counts = json.loads((repo / "metrics/data.json").read_text())
    assert (
        counts["task"]["train"]["rows"] > 0 and counts["task"]["train"]["rows_read"] >= counts["task"]["train"]["rows"]
    )


FOLDER_STAGES = [
    ("prepare", None), ("prepare_transfer", "en_es"), ("synthesize", None), ("corpus", None), ("cpt", None),
    ("finetune_en", None), ("finetune", "full_ft"), ("adamergex", None),
]  # fmt: skip


@pytest.mark.parametrize(("stage", "key"), FOLDER_STAGES, ids=[s for s, _ in FOLDER_STAGES])
def test_stage_scripts_refuse_an_unsafe_output_folder_before_any_work(tmp_path, stage, key):
    """A stage script run by hand with other paths than dvc.yaml's (they are arguments now) checks its output
    folder as `cmmerge` commands do: `--out .` would replace the repository, `--out <one of its inputs>` an input."""
    import hashlib

    from .repo import stage_command

    repo = copy_repo(tmp_path / "repo", with_git=False)
    before = hashlib.sha256((repo / "params.yaml").read_bytes()).hexdigest()
    cmd = stage_command(repo, stage, key)
    for out, answer in ((".", "is the current folder"), (cmd[cmd.index("--out") - 2], None)):
        if answer is None:  # the path given just before --out: an input (or another output) of the stage
            if not cmd[cmd.index("--out") - 2].startswith("--"):
                continue
            out = cmd[cmd.index("--out") - 1]
            # the other path exists (as it would once its stage ran), with something in it that must survive
            holder = repo / out if not Path(out).suffix else (repo / out).parent
            holder.mkdir(parents=True, exist_ok=True)
            (holder / "keep.txt").write_text("an input\n")
        bad = [*cmd[: cmd.index("--out") + 1], out, *cmd[cmd.index("--out") + 2 :]]
        proc = run(repo, *bad)
        assert proc.returncode == 2, (bad, proc.stderr[-2000:])
        lines = [line for line in proc.stderr.splitlines() if line.startswith("cmmerge: error:")]
        assert len(lines) == 1 and "--out output folder" in lines[0], proc.stderr[-2000:]
        if answer:
            assert answer in lines[0]
    assert hashlib.sha256((repo / "params.yaml").read_bytes()).hexdigest() == before
    assert all(p.read_text() == "an input\n" for p in repo.rglob("keep.txt"))
    assert not list(repo.glob(".*.tmp-*"))
