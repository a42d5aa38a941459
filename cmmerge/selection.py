"""Choosing on dev: one rule for every choice the pipeline makes from scores (never from test).

The recipe grid (learning rate × epochs), the λ of task arithmetic (the sweep) and the λ of AdaMergeX are
each chosen as the candidate with the best seed-mean dev macro-F1; a tie goes to the candidate listed first,
so with ascending grids the smaller budget or the smaller λ wins. Keeping the rule in one place keeps the
three choices comparable, and a change of rule a change of one function.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cmmerge.errors import ConfigError
from cmmerge.fsutil import read_json

log = logging.getLogger(__name__)

DEV_SCORE = "dev_macro_f1"


def best_on_dev(records: list[dict], keys: tuple[str, ...], where: str, rerun: str) -> dict:
    """The record with the highest ``dev_macro_f1``; on a tie, the first in list order.

    ``keys`` are the fields that name a candidate (e.g. ``("lambda",)``); a record lacking one of them or its
    score was written by another version of the stage, and ``rerun`` (a command) says how to rewrite it.
    """
    if not records:
        raise ConfigError(f"{where} holds no candidates: {rerun}")
    missing = [i for i, r in enumerate(records) if not isinstance(r, dict) or not {*keys, DEV_SCORE} <= set(r)]
    if missing:
        names = " or ".join(repr(k) for k in (*keys, DEV_SCORE))
        raise ConfigError(f"{where}: record(s) {missing} lack {names}; not written by this version: {rerun}")
    return max(records, key=lambda r: r[DEV_SCORE])  # max keeps the first of equal scores


def lambda_from_sweep(path: str | Path, merge: str = "ta") -> float:
    """The λ of the sweep written at ``path`` with the best dev macro-F1 (``merges.<merge>.parameters.lambda:
    dev``); a clear error when the sweep has not run."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"merges.{merge}.parameters.lambda is 'dev' (choose λ on dev from the sweep), but {path} does not "
            "exist: run the sweep stage first (`dvc repro sweep`) or give λ as a number"
        )
    records = read_json(path)
    swept = (
        {r["merge"] for r in records if isinstance(r, dict) and "merge" in r} if isinstance(records, list) else set()
    )
    if swept and swept != {merge}:
        raise ConfigError(
            f"merges.{merge}.parameters.lambda is 'dev', but {path} swept merges.{', '.join(map(str, swept))}: set "
            f"sweep.merge: {merge} (the sweep chooses λ for one entry) or give λ as a number"
        )
    best = best_on_dev(records, ("lambda",), str(path), "rerun the sweep stage (`dvc repro sweep`)")
    lam = float(best["lambda"])
    log.info("λ chosen on dev from %s: %g", path, lam)
    return lam
