"""The body of a pull request's metrics comment: what the change did to the results, against the base branch.

CI (``.github/workflows/metrics.yml``) reproduces the pipeline on the pull request's head, runs
``cmmerge pr-report --base origin/<base branch>`` and posts the Markdown with CML
(``cml comment create``), which uploads the images the Markdown links to. The comment holds:

- ``dvc metrics diff BASE --md``: every metric that changed, file by file (DVC's own diff);
- the methods whose in-pair score changed, from ``metrics/eval/<method>.json`` of both sides;
- the report table (``metrics/report.md``) of the base and of this branch;
- every PNG under ``metrics/png`` that differs, this branch's and the base's side by side.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cmmerge.errors import DataError

PNG_DIR = "metrics/png"
EVAL_DIR = "metrics/eval"
REPORT = "metrics/report.md"


def _run(cmd: list[str], repo: Path) -> str:
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"`{' '.join(cmd)}` failed in {repo}: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def _show(repo: Path, rev: str, path: str, binary: bool = False) -> bytes | str | None:
    """``path`` as it is at ``rev`` (None if it does not exist there)."""
    done = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True)
    if done.returncode != 0:
        return None
    return done.stdout if binary else done.stdout.decode("utf-8")


def _tracked(repo: Path, rev: str, folder: str) -> list[str]:
    out = _run(["git", "ls-tree", "-r", "--name-only", rev, "--", folder], repo)
    return [line for line in out.splitlines() if line]


def changed_methods(repo: str | Path, base: str) -> dict[str, tuple[float | None, float | None]]:
    """Methods whose in-pair macro-F1 differs between ``base`` and the workspace: ``{method: (base, head)}``."""
    repo = Path(repo)
    names = {Path(p).stem for p in _tracked(repo, base, EVAL_DIR)} | {p.stem for p in (repo / EVAL_DIR).glob("*.json")}
    changed = {}
    for method in sorted(names):
        old = _show(repo, base, f"{EVAL_DIR}/{method}.json")
        path = repo / EVAL_DIR / f"{method}.json"
        a = json.loads(old)["macro_f1"] if old else None
        b = json.loads(path.read_text(encoding="utf-8"))["macro_f1"] if path.is_file() else None
        if a != b:
            changed[method] = (a, b)
    return changed


def pr_report(repo: str | Path, base: str, out_dir: str | Path) -> Path:
    """Write ``out_dir/report.md`` (and the images it links to) comparing the workspace with ``base``."""
    repo, out_dir = Path(repo), Path(out_dir)
    base_sha = _run(["git", "rev-parse", "--short", base], repo).strip()
    diff = _run(["dvc", "metrics", "diff", base, "--md"], repo).strip() or "No metric changed."
    methods = changed_methods(repo, base)
    lines = [
        f"## cmmerge: results of this branch against `{base}` ({base_sha})",
        "",
        "### `dvc metrics diff`",
        "",
        diff,
    ]
    lines += ["", "### Methods whose in-pair macro-F1 changed", ""]
    if methods:
        lines += ["| method | base | this branch |", "|---|---|---|"]
        for method, (a, b) in methods.items():
            show = [f"{100 * v:.2f}" if v is not None else "–" for v in (a, b)]
            lines.append(f"| `{method}` | {show[0]} | {show[1]} |")
    else:
        lines.append("None.")
    base_table = _show(repo, base, REPORT)
    head_table = (repo / REPORT).read_text(encoding="utf-8") if (repo / REPORT).is_file() else None
    for title, table in ((f"base ({base_sha})", base_table), ("this branch", head_table)):
        lines += ["", f"### Results table: {title}", "", (table or "(no metrics/report.md)").strip()]
    images = out_dir / "images"
    plots = []
    for rel in sorted(
        set(_tracked(repo, base, PNG_DIR)) | {p.relative_to(repo).as_posix() for p in (repo / PNG_DIR).rglob("*.png")}
    ):
        old = _show(repo, base, rel, binary=True)
        path = repo / rel
        new = path.read_bytes() if path.is_file() else None
        if old == new:
            continue
        stem = rel.removeprefix(PNG_DIR + "/").replace("/", "__").removesuffix(".png")
        cells = []
        for side, data in (("this branch", new), ("base", old)):
            if data is None:
                cells.append(f"({side}: none)")
                continue
            target = images / f"{stem}.{'head' if side == 'this branch' else 'base'}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            cells.append(f"![{rel} ({side})](images/{target.name})")
        plots.append(f"**{rel}**\n\n" + " ".join(cells))
    lines += ["", "### Changed plots", "", *(plots or ["None."])]
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report
