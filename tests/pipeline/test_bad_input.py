"""Bad input to a stage: one clear error line naming the file or key, exit status 2, no traceback, no outs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .repo import copy_repo, edit_params, run_stage


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
