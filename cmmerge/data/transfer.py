"""Where the transfer pairs' prepared test sets lie: one answer for every stage that reads them.

``prepare_transfer@<pair>`` writes ``data/transfer/<pair>/test.jsonl``. DVC never deletes the folder of a
pair that a later config dropped, so the stages that read these sets (``prepare`` and ``corpus`` de-leak
against them, ``evaluate`` scores them) take the configured pair names and ignore any other folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cmmerge.errors import DataError


def transfer_test_files(transfer_dir: str | Path | None, pairs: Iterable[str] | None = None) -> dict[str, Path]:
    """``<pair>/test.jsonl`` under ``transfer_dir`` by pair name, for the configured ``pairs`` (None: every folder).

    A configured pair without its file is an error: its ``prepare_transfer`` stage has not run.
    """
    if transfer_dir is None:
        return {}
    wanted = None if pairs is None else set(pairs)
    found = {
        path.parent.name: path
        for path in sorted(Path(transfer_dir).glob("*/test.jsonl"))
        if wanted is None or path.parent.name in wanted
    }
    missing = sorted((wanted or set()) - set(found))
    if missing:
        raise DataError(f"{transfer_dir}: no test set of transfer pair(s) {', '.join(missing)} (run prepare_transfer)")
    return found
