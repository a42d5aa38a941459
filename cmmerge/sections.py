"""Params sections whose models used to live in stage scripts: ``model``, and the ``merges`` entries.

Kept in a module of their own that imports nothing heavy, so the ``base`` and ``merge`` stages depend on
these few lines only (every params model belongs to the library, where ``cmmerge.schema`` and the
``cmmerge config`` commands can validate a whole params file before any stage runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cmmerge.errors import ConfigError
from cmmerge.params import require


@dataclass
class ModelParams:
    """``model`` section: the base checkpoint (hub id, local folder, or ``pkg:<package>``)."""

    name: str
    seed: int = 13  # initialises a missing pre-training head
    trust_remote_code: bool = False
    # pickle weights (pytorch_model.bin) can run code when loaded: read only if the user trusts the checkpoint
    allow_pickle: bool = False


# The folders a ``merges`` entry may take its models from: what the stages before ``merge@<name>`` write. They
# are the merge stage's deps in dvc.yaml (DVC cannot give a foreach stage per-entry dependency lists, so each
# merge depends on all of them: a merge whose inputs did not change reruns in seconds and writes the same bytes,
# so nothing downstream of it reruns). A test keeps this tuple and dvc.yaml equal.
MERGE_INPUTS = ("models/base", "models/cpt", "models/finetune_en")
MERGED_ROOT = "models/merged"  # merges.<name> is written to models/merged/<name>
DEV = "dev"  # parameters.lambda: dev → the sweep's best dev λ


def merge_config(entry: Any, where: str, lam: float | None = None):
    """The :class:`~cmmerge.merge.MergeConfig` of one ``merges`` entry, validated.

    ``parameters.lambda: dev`` is replaced by ``lam`` (the sweep's choice, or the λ being swept); every other
    value is the entry's own. Without ``lam``, a ``dev`` λ is validated as if it were 1.0, so that a config can
    be checked before the sweep has run.
    """
    from cmmerge.merge import MergeConfig

    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a merge config (a mapping with merge_method and models), got {entry!r}")
    resolved = dict(entry)
    # an entry without parameters takes the swept λ too: left out, every λ of a sweep merged at the method's default
    parameters = entry.get("parameters") if entry.get("parameters") is not None else {}
    if isinstance(parameters, dict) and (lam is not None or parameters.get("lambda") == DEV):
        resolved["parameters"] = {**parameters, "lambda": 1.0 if lam is None else lam}
    return MergeConfig.from_dict(resolved, where=where)


def merge_entry(params: dict, name: str, where: str) -> dict:
    """Entry ``name`` of the ``merges`` section of a params mapping, checked like :func:`check_merges` checks it.

    Only the entry is read (the ``merge@<name>`` stage lists only ``merges.<name>``); whether a ``dev`` λ belongs
    to the entry the sweep swept is checked against the sweep's record (:func:`cmmerge.selection.lambda_from_sweep`)
    and, before anything runs, by ``cmmerge config show/apply``.
    """
    merges = params.get("merges")
    if not isinstance(merges, dict) or name not in merges:
        known = ", ".join(merges) if isinstance(merges, dict) else "none"
        raise ConfigError(f"{where}: merges.{name} does not exist (entries: {known}){closest_name(name, merges or {})}")
    check_merges({name: merges[name]}, None, where)
    return merges[name]


def uses_dev(entry: Any) -> bool:
    """Whether a ``merges`` entry takes its λ from the sweep (``parameters.lambda: dev``)."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("parameters"), dict)
        and entry["parameters"].get("lambda") == DEV
    )


def check_merges(merges: Any, swept: str | None, where: str) -> dict:
    """Validate the ``merges`` section: each entry a merge config over :data:`MERGE_INPUTS`; ``lambda: dev`` only
    on the entry the sweep sweeps (``sweep.merge``; ``None``: not checked here), since the sweep chooses that
    entry's λ. Returns the configs."""
    if not isinstance(merges, dict) or not merges:
        raise ConfigError(f"{where}: merges must be a mapping of named merge configs, got {merges!r}")
    if swept is not None and swept not in merges:
        raise ConfigError(
            f"{where}: sweep.merge is {swept!r}, not an entry of merges ({', '.join(merges)})"
            + closest_name(swept, merges)
        )
    built = {}
    for name, entry in merges.items():
        key = f"{where}: merges.{name}"
        require(
            isinstance(name, str) and name.replace("_", "").isalnum(),
            f"{key}: a merge name must be letters, digits and _ (it names models/merged/<name>)",
        )
        cfg = merge_config(entry, key)
        for i, path in [("base_model", cfg.base_model)] + [
            (f"models[{j}].model", m.model) for j, m in enumerate(cfg.models)
        ]:
            if path is not None and path not in MERGE_INPUTS:
                raise ConfigError(
                    f"{key}.{i} is {path!r}, which no stage before the merge writes; expected one of "
                    f"{', '.join(MERGE_INPUTS)}{closest_name(path, MERGE_INPUTS)}"
                )
        if swept is not None and uses_dev(entry) and name != swept:
            raise ConfigError(
                f"{key}.parameters.lambda is 'dev', but the sweep chooses λ for merges.{swept} only "
                f"(sweep.merge): give a number, or set sweep.merge: {name}"
            )
        built[name] = cfg
    return built


def closest_name(name: str, options) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""
