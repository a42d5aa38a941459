"""dvc.yaml cannot drift from the stage scripts: deps cover the code each script runs, paths live in dvc.yaml.

DVC reruns a stage only when one of its listed deps or params changes, so a module a stage imports but does not
list is a change DVC would not see (issue 12 found ``cpt`` missing ``cmmerge/data/loaders.py``). The imports are
derived from the source (every ``import`` a stage script reaches, at the top of a module or inside a function,
transitively), not kept by hand. Which params each stage reads is checked at run time, in the tiny pipeline
(tests/pipeline/test_dvc_roundtrip.py), where ``CMMERGE_TRACE_PARAMS`` records every section read.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _stages() -> dict[str, dict]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in stages.items()}


def stage_script(stage: dict) -> Path:
    scripts = [w for w in stage["cmd"].split() if w.startswith("stages/") and w.endswith(".py")]
    assert len(scripts) == 1, f"a stage runs one script: {stage['cmd']}"
    return ROOT / scripts[0]


def _module_file(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def _imported_modules(path: Path) -> set[str]:
    """Every cmmerge module ``path`` imports, wherever the import statement stands."""
    package = list(path.relative_to(ROOT).with_suffix("").parts)
    package = package[:-1]  # a module's relative imports start from its package (an __init__'s too)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {m for m in found if m.split(".")[0] == "cmmerge"}


def code_closure(script: Path) -> set[str]:
    """The repository files a stage script runs: itself and every cmmerge module it reaches, with their packages'
    ``__init__.py`` (which Python runs on the way)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(path):
            parts = module.split(".")
            for i in range(1, len(parts) + 1):  # cmmerge/__init__.py, cmmerge/merge/__init__.py, …
                found = _module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return {str(p.relative_to(ROOT)) for p in seen}


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def _deps(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


@pytest.mark.parametrize("name", sorted(_stages()))
def test_deps_cover_every_module_the_stage_script_runs(name):
    stage = _stages()[name]
    missing = sorted(p for p in code_closure(stage_script(stage)) if not _covered(p, _deps(stage)))
    assert not missing, f"dvc.yaml stage {name!r} runs code it does not list in deps: {', '.join(missing)}"


def test_the_closure_follows_imports_inside_functions_and_packages():
    closure = code_closure(ROOT / "stages" / "cpt.py")
    # cpt.py imports the corpus loader inside a function; the packages' __init__ files run on the way
    assert {"cmmerge/train/cpt.py", "cmmerge/data/loaders.py", "cmmerge/__init__.py"} <= closure
    assert "cmmerge/eval/report.py" not in closure


def _path_like(text: str) -> bool:
    return "/" in text  # a folder in the path: more than a file name inside a folder the script was given


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "stages").glob("*.py")))
def test_stage_scripts_take_their_paths_as_arguments(script):
    """Paths are written once, in dvc.yaml's command lines next to deps and outs (DVC's example-get-started);
    a script holds file names inside a folder it was given at most (``f"{method}.json"``)."""
    tree = ast.parse((ROOT / "stages" / script).read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef) and node.body and isinstance(node.body[0], ast.Expr)
    }
    literals = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]
    assert not [t for t in literals if _path_like(t)], f"stages/{script} holds path literals"


def test_every_path_argument_in_dvc_yaml_is_a_dep_or_an_out():
    """What a command line names is what DVC tracks: an argument path missing from deps/outs would be a file
    DVC neither checks nor caches."""
    for name, stage in _stages().items():
        words = stage["cmd"].split()
        # --work: the scratch folder of kept cells (not an output); --prepared-root: a prefix, not a file read
        not_files = {"--work", "--prepared-root"}
        args = [w for i, w in enumerate(words) if i > 0 and words[i - 1].startswith("--") and words[i - 1] not in
                not_files]  # fmt: skip
        outs = [o if isinstance(o, str) else next(iter(o)) for kind in ("outs", "metrics", "plots")
                for o in stage.get(kind, [])]  # fmt: skip
        tracked = _deps(stage) + outs
        # a folder argument of which the stage reads (and lists) only some files is tracked through those
        untracked = [
            a for a in args
            if not _covered(a, tracked) and not any(t.startswith(a + "/") for t in tracked) and "${" not in a
        ]  # fmt: skip
        assert not untracked, f"stage {name!r} passes {untracked} that are neither deps nor outs"


def test_dvc_lock_holds_only_stages_dvc_yaml_defines():
    """A stage removed or renamed in dvc.yaml leaves its entry in dvc.lock, which DVC keeps; the stale entry
    then feeds a record's list of input hashes. This project's lock once carried 81 kB of a removed stage."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        defined = {stage.addressing for stage in repo.index.stages}
    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    assert locked <= defined, f"dvc.lock holds stages dvc.yaml does not define: {sorted(locked - defined)}"
