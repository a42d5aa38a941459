"""Finished cells of a grid kept on disk, so a killed or multi-session run resumes where it stopped.

The recipe grid and the learning curve each train many small models. A finished cell is written as a
JSON file holding a fingerprint of everything its result depends on: its settings, the contents of its
inputs (starting checkpoint, training data, scored split) and the training and scoring code. A later
run reuses the file only when the fingerprint is the same, so a change of params, data or code
retrains the cell instead of reusing a stale score.

Each kept file also holds the seconds its cell took to train and score, on the stage's clock
(:func:`cmmerge.runner.stage_time`: a stretch when the stage was stopped does not count), and the id of the
stage run that trained it. A cell kept by a killed attempt of the same stage is in that attempt's time, which the
rerun adds as interrupted time, so its seconds are not added again as reused. A stage that reuses cells adds
their seconds to its own run time (:data:`reused`, read by :mod:`cmmerge.runner`), so a stage timing is the
compute its result cost, not only the minutes of the run that finished it. The seconds never reach a
stage's outputs: they are not part of the cell :func:`load_kept` and :func:`keep` return.
"""

from __future__ import annotations

from pathlib import Path

from cmmerge.fsutil import read_json, write_json
from cmmerge.runner import stage_runs, stage_time


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


def cells_dir(work_dir: str | Path) -> Path:
    """Where a grid stage with work folder ``work_dir`` (its ``--work`` argument) keeps its cells.

    One place, because :func:`cmmerge.overlay.exp_run` copies every grid's kept cells into the temporary copy
    of the repository a queued experiment runs in: the cells are git-ignored, and without them a queued variant
    of a real config retrains every cell of the learning curve (hours), even those its change does not touch.
    Copying is safe because a cell is reused only under its own fingerprint.
    """
    return Path(work_dir) / "cells"


def cell_fingerprint(settings: dict, *inputs: str | Path) -> str:
    """Fingerprint of a cell: its settings, the contents of ``inputs`` and of :func:`training_code`."""
    from cmmerge.train.common import fingerprint

    return fingerprint(settings, *inputs, *training_code())


# compute time of the kept cells this process reused, and how many of them were written without one
reused = {"seconds": 0.0, "untimed": 0}
_missed: dict[str, float] = {}  # path of a cell found missing or stale -> when, so keep() can time it


def load_kept(path: str | Path, fp: str) -> dict | None:
    """The kept cell at ``path`` if it was written under fingerprint ``fp``; else ``None``."""
    path = Path(path)
    cell = read_json(path) if path.is_file() else None
    if not (isinstance(cell, dict) and cell.get("fingerprint") == fp):
        _missed[str(path)] = stage_time()
        return None
    seconds = cell.pop("seconds", None)
    # a cell trained by a killed attempt of this stage is in its interrupted time already: not added again
    if cell.pop("run", None) not in stage_runs()[1]:
        if seconds is None:  # kept by a version that did not time its cells
            reused["untimed"] += 1
        else:
            reused["seconds"] += float(seconds)
    return cell


def keep(path: str | Path, fp: str, cell: dict) -> dict:
    """Write ``cell`` (with its fingerprint and the seconds since :func:`load_kept` missed it) to ``path``
    atomically; return the cell with its fingerprint."""
    started = _missed.pop(str(Path(path)), None)
    seconds = round(stage_time() - started, 1) if started is not None else None
    run = stage_runs()[0]
    timing = {**({"seconds": seconds} if seconds is not None else {}), **({"run": run} if run else {})}
    write_json(path, {"fingerprint": fp, **cell, **timing})
    return {"fingerprint": fp, **cell}
