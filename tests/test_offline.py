"""Offline first (issue 13, point 3): every entry point sets the Hugging Face offline environment before
anything of that stack is imported, and a model path that does not exist fails at once with "no such folder"
instead of a minute of retries to the hub."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HF = ("transformers", "huggingface_hub", "datasets", "peft", "accelerate", "dvclive", "torch", "safetensors")
ENTRY_POINTS = [*sorted((ROOT / "stages").glob("*.py")), ROOT / "cmmerge" / "cli.py", ROOT / "cmmerge" / "__main__.py"]


@pytest.mark.parametrize("script", ENTRY_POINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_cmmerge_is_imported_before_any_hugging_face_module(script):
    """Importing anything from ``cmmerge`` runs cmmerge/__init__.py, which sets the offline variables; so the
    first import of the Hugging Face stack (or torch, which some of it loads) must come after one."""
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        if any(n == "cmmerge" or n.startswith("cmmerge.") for n in names):
            return
        assert not any(n.split(".")[0] in HF for n in names), f"{script.name}: imports {names} before cmmerge"


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


MISSING_MODEL_CASES = [
    ("stage", "the cpt stage with `models/base` missing (nothing offline in the environment)", "no such folder"),
    ("cli_path", "`cmmerge cpt models/nope …` where ./models exists", "no such folder"),
    ("cli_dot", "`cmmerge base ./nope out`", "no such folder"),
]


@pytest.mark.parametrize(("case", "what", "answer"), MISSING_MODEL_CASES, ids=[c[0] for c in MISSING_MODEL_CASES])
def test_missing_model_path_fails_fast(tmp_path, case, what, answer):
    params = ROOT / "params.yaml"
    (tmp_path / "params.yaml").write_bytes(params.read_bytes())
    (tmp_path / "models").mkdir()
    (tmp_path / "data").mkdir()
    if case == "stage":
        # the cpt stage as dvc.yaml runs it (its paths from there)
        from pipeline.repo import stage_command

        cmd = [sys.executable if w == "python" else w for w in stage_command(ROOT, "cpt")]
        cmd[1] = str(ROOT / cmd[1])
    elif case == "cli_path":
        cmd = [sys.executable, "-m", "cmmerge", "cpt", "models/nope", "data", "out"]
    else:
        cmd = [sys.executable, "-m", "cmmerge", "base", "./nope", "out"]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("cmmerge:")]
    assert len(lines) == 1 and answer in lines[0] and "Traceback" not in done.stderr, done.stderr
    # a generous bound (imports on a loaded machine take seconds); retries to the hub took ~55 s
    assert elapsed < 30, f"{elapsed:.1f} s"
    assert not (tmp_path / "out").exists()


def test_offline_is_set_on_import_and_a_user_setting_wins():
    code = (
        "import cmmerge, os, huggingface_hub.constants as c; "
        "print(os.environ['TRANSFORMERS_OFFLINE'], os.environ['HF_DATASETS_OFFLINE'], c.HF_HUB_OFFLINE)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1", "True"]
    done = subprocess.run(
        [sys.executable, "-c", code], env={**_clean_env(), "HF_HUB_OFFLINE": "0"}, capture_output=True, text=True
    )
    assert done.stdout.split() == ["1", "1", "False"]
