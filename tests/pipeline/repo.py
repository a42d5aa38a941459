"""Helpers for tests that run the pipeline in a throw-away copy of the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def copy_repo(dest: Path, with_git: bool = True) -> Path:
    """Copy the files git knows about (tracked, or untracked and not ignored) into ``dest``."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    if with_git:
        git(dest, "init", "-q")
        git(dest, "add", "-A")
        git(dest, "commit", "-qm", "copy")
    return dest


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, text=True, env=env).stdout


def edit_params(repo: Path, **updates) -> None:
    """Set dotted keys in ``repo/params.yaml``: ``edit_params(repo, **{"merge.lambda": 0.3})``."""
    path = repo / "params.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in updates.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def run(repo: Path, *cmd: str, check: bool = False, timeout: int = 600) -> subprocess.CompletedProcess:
    # stages run `python …`: the interpreter running the tests, with cmmerge installed, must come first
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(repo), "PATH": path}
    cmd = (sys.executable, *cmd[1:]) if cmd[0] == "python" else cmd
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def dvc(repo: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    return run(repo, str(Path(sys.executable).parent / "dvc"), *args, check=check, timeout=timeout)


def stage_command(repo: Path, stage: str, key: str | None = None) -> list[str]:
    """The command line dvc.yaml gives ``stage`` (``foreach`` stages: with ``key``), as DVC would run it."""
    import shlex

    spec = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][stage]
    cmd = spec.get("do", spec)["cmd"].replace("${launch}", "python")
    if key is not None:
        cmd = cmd.replace("${key}", key)
    return shlex.split(cmd)


def run_stage(repo: Path, stage: str, key: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run one stage's script exactly as dvc.yaml's command line runs it (its paths come from there)."""
    return run(repo, *stage_command(repo, stage, key), **kwargs)


def add_soup_merge(repo: Path) -> None:
    """Add a merge starting point (a linear soup of θ_cpt and θ_en) and a method fine-tuning it to
    ``repo/params.yaml``: configuration only, as a user would."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["merges"]["soup"] = {
        "merge_method": "linear",
        "models": [{"model": "models/cpt"}, {"model": "models/finetune_en"}],
        "missing_tensors": "base",
        "base_model": "models/base",
    }
    params["methods"]["soup_ft"] = {"init": "models/merged/soup", "train": "data/prepared/task"}
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
