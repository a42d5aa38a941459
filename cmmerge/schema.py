"""The whole params file, validated at once: every section by its model, and the links between sections.

Each stage validates its own sections when it starts; this checks a composed config *before* anything runs
(``cmmerge config show`` / ``apply``, and a test over params.yaml and every shipped config), so that a
config that deletes a required section, misspells one, or names a method that does not exist is refused
with one line, not hours into a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmmerge.errors import ConfigError
from cmmerge.params import from_dict
from cmmerge.sections import MERGED_ROOT, check_merges, closest_name


def _sections() -> dict[str, type]:
    # imported here: the models pull in the training stack, which `cmmerge --help` need not load
    from cmmerge.data.corpus import CorpusParams
    from cmmerge.data.prepare import PrepareParams
    from cmmerge.eval.curve import CurveParams
    from cmmerge.eval.evaluate import EvaluateParams
    from cmmerge.eval.report import ReportParams
    from cmmerge.eval.sweep import SweepParams
    from cmmerge.sections import ModelParams
    from cmmerge.synth.pipeline import SynthesizeParams
    from cmmerge.train.adapter_transfer import AdapterTransferParams
    from cmmerge.train.cpt import CptParams
    from cmmerge.train.finetune import FinetuneParams
    from cmmerge.train.recipe import RecipeParams

    return {
        "model": ModelParams,
        "prepare": PrepareParams,
        "synthesize": SynthesizeParams,
        "corpus": CorpusParams,
        "cpt": CptParams,
        "finetune": FinetuneParams,
        "recipe": RecipeParams,
        "evaluate": EvaluateParams,
        "report": ReportParams,
        "sweep": SweepParams,
        "curve": CurveParams,
        "adamergex": AdapterTransferParams,
    }


# mappings of named entries (one stage per entry), and plain values
ENTRY_SECTIONS = ("methods", "transfer", "merges")


def _entry_models() -> dict[str, type]:
    """The model of one entry of each entry section (imported here, like :func:`_sections`)."""
    from cmmerge.data.loaders import DatasetSpec
    from cmmerge.merge import MergeConfig
    from cmmerge.train.finetune import MethodSpec

    return {"methods": MethodSpec, "transfer": DatasetSpec, "merges": MergeConfig}


OTHER_KEYS = ("launch",)


def validate_params(params: Any, where: str = "params") -> dict[str, Any]:
    """Every section of a composed params mapping, built into its model; raises :class:`ConfigError`."""
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: expected a mapping of sections, got {type(params).__name__}")
    sections = _sections()
    known = [*sections, *ENTRY_SECTIONS, *OTHER_KEYS]
    unknown = sorted(set(params) - set(known))
    if unknown:
        hint = closest_name(unknown[0], known)
        expected = ", ".join(known)
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown)}{hint}; expected some of {expected}")
    missing = [s for s in [*sections, "methods", "merges", "launch"] if s not in params]
    if missing:
        raise ConfigError(
            f"{where}: section(s) {', '.join(missing)} missing; every stage of dvc.yaml reads its section "
            "(did an overlay __delete__ one? include configs/default.yaml first)"
        )
    built: dict[str, Any] = {name: from_dict(cls, params[name], f"{where}: {name}") for name, cls in sections.items()}
    if not isinstance(params["launch"], str) or not params["launch"].strip():
        raise ConfigError(f"{where}: launch must be a command (e.g. python), got {params['launch']!r}")
    for name, cls in _entry_models().items():
        if name == "merges":
            continue  # check_merges, below: merge configs are validated with their `dev` λ resolved
        entries = params.get(name) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}: {name} must be a mapping of named entries, got {type(entries).__name__}")
        built[name] = {key: from_dict(cls, value, f"{where}: {name}.{key}") for key, value in entries.items()}
    built["merges"] = check_merges(params["merges"], built["sweep"].merge, where)
    methods = built["methods"]
    for name, spec in methods.items():
        path = Path(spec.init)
        if path.parent == Path(MERGED_ROOT) and path.name not in built["merges"]:
            raise ConfigError(
                f"{where}: methods.{name}.init is {spec.init}, but merges has no entry {path.name!r} "
                f"(entries: {', '.join(built['merges'])}){closest_name(path.name, built['merges'])}"
            )
    if not methods:
        raise ConfigError(f"{where}: methods is empty; name at least the reference method")
    reference = built["report"].reference
    if reference not in methods:
        raise ConfigError(f"{where}: report.reference is {reference!r}, not one of methods ({', '.join(methods)})")
    absent = [m for m in built["curve"].methods if m not in methods]
    if absent:
        raise ConfigError(f"{where}: curve.methods names {', '.join(absent)}, not in methods ({', '.join(methods)})")
    return built


def params_json_schema() -> dict:
    """The whole params file as JSON Schema, from the same pydantic models that validate each section (editors
    and CI linters can check a config with it: ``cmmerge config schema > params.schema.json``)."""
    import pydantic

    from cmmerge.params import schema_model

    fields: dict[str, Any] = {name: (schema_model(cls), ...) for name, cls in _sections().items()}
    for name, cls in _entry_models().items():
        fields[name] = (dict[str, schema_model(cls)], {} if name == "transfer" else ...)
    fields["launch"] = (str, "python")
    model = pydantic.create_model("Params", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    return model.model_json_schema()
