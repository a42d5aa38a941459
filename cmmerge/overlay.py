"""Experiment configs: small YAML overlays that include a common base, composed into a params file.

As in lm-evaluation-harness, an experiment is a short file that names what differs::

    # configs/real/sentimix_hinglish.yaml
    include: [_base.yaml]
    prepare:
      task: {path: ../shared/data/sentimix_hinglish}

``include`` lists files (relative to the including file) composed first, in order. Mappings merge
key by key, recursively; any other value (a list, a number, a string) replaces what was there; an
empty mapping (``transfer: {}``) replaces the mapping, clearing it; the value ``__delete__`` removes a
key (e.g. a demo transfer pair). The composed result is a complete ``params.yaml``, so DVC tracks the
experiment exactly as it tracks the default: ``cmmerge config apply CONFIG`` writes it,
``cmmerge exp run CONFIG`` writes it and runs ``dvc exp run``.

The default lives in ``configs/default.yaml``; experiments include it, never ``params.yaml``, which is
the *output* of whatever was applied last (a mutable file cannot be a base: after applying experiment A,
experiment B would compose on top of A). Applying a config without includes copies it byte for byte, so
``params.yaml`` on main is ``configs/default.yaml`` with its comments (a test checks they are identical).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from cmmerge import yaml12
from cmmerge.errors import ConfigError
from cmmerge.params import load_yaml

DELETE = "__delete__"


def deep_merge(base: dict, overlay: dict) -> dict:
    """``overlay`` on top of ``base`` (neither is modified): mappings merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if value == DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and value and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def compose(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The params of config ``path`` with all its includes applied."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"{path}: include cycle ({chain})")
    data = load_yaml(path)
    includes = data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{path}: include must be a file name or a list of file names")
    result: dict = {}
    for name in includes:
        target = (path.parent / name).resolve()
        if not target.is_file():
            raise ConfigError(f"{path}: included file {name} not found (looked at {target})")
        result = deep_merge(result, compose(target, (*_seen, path)))
    return deep_merge(result, data)


def dump(params: dict[str, Any]) -> str:
    header = "# composed by `cmmerge config apply`; edit the config files, not this output\n"
    return header + yaml12.dump(params, sort_keys=False, allow_unicode=True, width=120)


def composed_and_validated(config: str | Path) -> dict:
    """:func:`compose`, then every section checked (:func:`cmmerge.schema.validate_params`) before anything
    is written or run."""
    from cmmerge.schema import validate_params

    params = compose(config)
    validate_params(params, where=str(config))
    return params


def apply(config: str | Path, out: str | Path = "params.yaml") -> dict:
    """Compose and validate ``config``, then write it to ``out``; a config without includes is copied as it is
    (comments kept). Nothing is written if validation fails."""
    params = composed_and_validated(config)
    raw = load_yaml(config)
    text = Path(config).read_text(encoding="utf-8") if "include" not in raw else dump(params)
    Path(out).write_text(text, encoding="utf-8")
    return params


def grid_cells_in_workspace(pipeline: str | Path = "dvc.yaml") -> list[Path]:
    """The kept-cell folders of the pipeline's grid stages (each stage's ``--work`` folder, as ``dvc.yaml`` names
    it, through :func:`cmmerge.train.kept.cells_dir`) that exist in the workspace."""
    from cmmerge.train.kept import cells_dir

    works = dict.fromkeys(work_folders(yaml12.load(Path(pipeline).read_text()) or {}))
    return [cells_dir(w) for w in works if cells_dir(w).is_dir()]


def work_folders(pipeline: dict) -> list[str]:
    """The ``--work`` folders the stage commands of a parsed ``dvc.yaml`` name, in either spelling (``--work X``,
    ``--work=X``), in ``foreach`` stages too and in list-form ``cmd``."""
    import shlex

    found = []
    for stage in (pipeline.get("stages") or {}).values():
        body = stage.get("do", stage) if isinstance(stage, dict) else {}
        cmds = body.get("cmd", [])
        for cmd in [cmds] if isinstance(cmds, str) else cmds:
            args = shlex.split(cmd)
            for i, arg in enumerate(args):
                if arg == "--work" and i + 1 < len(args):
                    found.append(args[i + 1])
                elif arg.startswith("--work="):
                    found.append(arg.removeprefix("--work="))
    return found


def exp_run(config: str | Path, extra: list[str]) -> int:
    """Compose ``config`` into params.yaml and run it as a named DVC experiment.

    Queued (``--queue``, ``--run-all``) and ``--temp`` experiments run in a temporary copy of the repository that
    holds only what git tracks, so two git-ignored things are copied in (``--copy-paths``): the data sets under
    ``data/real`` when the config reads them, and the cells the grid stages have kept
    (:func:`grid_cells_in_workspace`), so a variant retrains only the cells its change touches.
    """
    from cmmerge.data.fetch import DEFAULT_OUT, reads_from

    params = apply(config)
    name = Path(config).stem.replace("_", "-")
    copy: list[str] = []
    if {"--queue", "--run-all", "--temp"} & set(extra):
        if reads_from(params):
            if not DEFAULT_OUT.is_dir():
                raise ConfigError(
                    f"{config} reads data sets from {DEFAULT_OUT}/, which does not exist: "
                    f"run `cmmerge data get --config {config}` first"
                )
            copy += ["--copy-paths", DEFAULT_OUT.as_posix()]
        for cells in grid_cells_in_workspace():
            copy += ["--copy-paths", cells.as_posix()]
    cmd = ["dvc", "exp", "run", *(["--name", name] if "--queue" not in extra else []), *copy, *extra]
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd)
