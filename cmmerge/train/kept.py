"""Finished cells of a grid kept on disk, so a killed or multi-session run resumes where it stopped.

The recipe grid and the learning curve each train many small models. A finished cell is written as a
JSON file holding a fingerprint of everything its result depends on: its settings, the contents of its
inputs (starting checkpoint, training data, scored split) and the training and scoring code. A later
run reuses the file only when the fingerprint is the same, so a change of params, data or code
retrains the cell instead of reusing a stale score.
"""

from __future__ import annotations

from pathlib import Path

from cmmerge.fsutil import read_json, write_json


def training_code() -> list[Path]:
    """The code a trained-and-scored cell depends on: a change to it invalidates every kept cell."""
    import cmmerge.eval.metrics
    import cmmerge.eval.predict
    import cmmerge.models
    import cmmerge.train.common
    import cmmerge.train.finetune

    modules = (
        cmmerge.train.finetune,
        cmmerge.train.common,
        cmmerge.eval.predict,
        cmmerge.eval.metrics,
        cmmerge.models,
    )
    return [Path(m.__file__) for m in modules]


def cell_fingerprint(settings: dict, *inputs: str | Path) -> str:
    """Fingerprint of a cell: its settings, the contents of ``inputs`` and of :func:`training_code`."""
    from cmmerge.train.common import fingerprint

    return fingerprint(settings, *inputs, *training_code())


def load_kept(path: str | Path, fp: str) -> dict | None:
    """The kept cell at ``path`` if it was written under fingerprint ``fp``; else ``None``."""
    path = Path(path)
    if not path.is_file():
        return None
    cell = read_json(path)
    return cell if isinstance(cell, dict) and cell.get("fingerprint") == fp else None


def keep(path: str | Path, fp: str, cell: dict) -> dict:
    """Write ``cell`` (with its fingerprint) to ``path`` atomically; return what was written."""
    kept = {"fingerprint": fp, **cell}
    write_json(path, kept)
    return kept
