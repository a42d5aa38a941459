"""The merge config: the YAML file of ``cmmerge merge`` and the ``merge`` section of ``params.yaml``.

In the spirit of mergekit's configs::

    merge_method: ties
    base_model: models/base
    models:
      - model: models/cpt
        parameters: {weight: 1.0, density: 0.2}
      - model: models/en
        parameters: {weight: 0.5}
    parameters: {lambda: 1.0, density: 0.2, sign_election: total}
    dtype: float32          # compute dtype
    out_dtype: bfloat16     # default: the base checkpoint's dtype
    tokenizer_source: base  # or a model's path or name

``parameters`` and each model's ``parameters`` are typed per method (:mod:`.methods`), so a λ given as
text or a density outside (0, 1] is reported with its dotted key before anything is read or written.

A :class:`MergeConfig` is what the user wrote; :meth:`MergeConfig.resolve` checks it against its method and
returns a :class:`ResolvedMerge` (the method, the typed parameters and the config's name in messages), which is
what the engine runs. Building a config with :meth:`~MergeConfig.from_dict` resolves it once too, so a bad
config is refused where it is read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from cmmerge.errors import ConfigError
from cmmerge.merge.registry import MergeMethod, get_method
from cmmerge.params import from_dict, load_yaml, require

DType = Literal["float32", "bfloat16", "float16"]
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ModelSpec:
    """One input checkpoint (a folder, ``pkg:…`` or hub id) and its per-model parameters."""

    model: str
    parameters: dict[str, Any] = field(default_factory=dict)
    name: str | None = None  # a short label for logs and the manifest (default: the reference)

    @property
    def label(self) -> str:
        return self.name or self.model


@dataclass
class MergeConfig:
    """A merge config as written, checked when built (:meth:`from_dict`, :meth:`from_yaml`); run it resolved."""

    merge_method: str
    models: list[ModelSpec]
    base_model: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    dtype: DType = "float32"
    out_dtype: DType | None = None
    tokenizer_source: str = "base"
    # tensors of the base that a model lacks: "error", or "base" (a zero task vector for that model)
    missing_tensors: Literal["error", "base"] = "error"
    # vocabulary-sized tensors whose first dimension differs from the base's: "error", or
    # "common_rows" (rows both have are merged; rows the model lacks take the base's values)
    embedding_size_mismatch: Literal["error", "common_rows"] = "error"
    # align checkpoints saved with and without the base_model_prefix (``bert.``/``model.``)
    align_prefix: bool = True
    max_shard_size: str | int = "2GB"
    trust_remote_code: bool = False

    def resolve(self, where: str = "merge config") -> ResolvedMerge:
        """This config checked against its method: the method and typed parameters, as a new frozen object.

        ``where`` names the config in every message (``params.yaml: merges.ta``, a file's path), including the
        ones the engine raises later about the checkpoints. Nothing is cached on the config: a config edited
        after it was built is checked again when it is resolved again.
        """
        method = get_method(self.merge_method, f"{where}.merge_method")
        require(
            len(self.models) >= method.min_models,
            f"{where}.models: {method.name} needs at least {method.min_models} model(s), got {len(self.models)}",
        )
        if method.max_models is not None:
            require(
                len(self.models) <= method.max_models,
                f"{where}.models: {method.name} takes at most {method.max_models} model(s), got {len(self.models)}",
            )
        if method.needs_base and method.level == "tensor":
            require(self.base_model is not None, f"{where}.base_model is required by {method.name}")
        params = from_dict(method.params, self.parameters, f"{where}.parameters")
        model_params = tuple(
            from_dict(method.model_params, m.parameters, f"{where}.models[{i}].parameters")
            for i, m in enumerate(self.models)
        )
        if method.check_models is not None:
            method.check_models(params, list(model_params), where)
        parse_size(self.max_shard_size, f"{where}.max_shard_size")
        return ResolvedMerge(self, method, params, model_params, where)

    def validate(self, where: str) -> None:
        """The hook :func:`cmmerge.params.from_dict` calls: a config that does not resolve is refused when built."""
        self.resolve(where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "merge config") -> MergeConfig:
        return from_dict(cls, data, where)

    @classmethod
    def from_yaml(cls, path: str | Path) -> MergeConfig:
        return cls.from_dict(load_yaml(path), where=str(path))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ResolvedMerge:
    """A merge config checked against its method (:meth:`MergeConfig.resolve`): what the engine runs.

    ``params`` and ``model_params`` are instances of the method's parameter dataclasses; ``where`` names the
    config in messages about its checkpoints.
    """

    config: MergeConfig
    method: MergeMethod
    params: Any
    model_params: tuple[Any, ...]
    where: str


def resolved(cfg: MergeConfig | ResolvedMerge) -> ResolvedMerge:
    """``cfg`` resolved (a :class:`MergeConfig` under its default name), for entry points that take either."""
    return cfg if isinstance(cfg, ResolvedMerge) else cfg.resolve()


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(value: str | int, key: str) -> int:
    """``"2GB"`` → 2·10⁹ bytes (``KB/MB/GB`` decimal, ``KiB/MiB/GiB`` binary, or a plain integer)."""
    if isinstance(value, int):
        size = value
    else:
        text = value.strip().upper().replace(" ", "")
        number = text.rstrip("KMGIB")
        unit = text[len(number) :]
        try:
            size = int(float(number) * _UNITS[unit])
        except (ValueError, KeyError):
            raise ConfigError(f"{key} must be a size such as 2GB or 500MB, got {value!r}") from None
    if size <= 0:
        raise ConfigError(f"{key} must be positive, got {value!r}")
    return size


def params_to_dict(obj) -> dict:
    """A typed parameter dataclass as the mapping a config would give (``lam`` back to ``lambda``)."""
    return {f.metadata.get("key", f.name): getattr(obj, f.name) for f in dataclasses.fields(obj)}
