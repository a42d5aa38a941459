"""The merge-method registry: each method registered by name with its typed parameters.

A method has two parameter dataclasses, read with :func:`cmmerge.params.from_dict` so that a wrong
type or an unknown key is reported with its dotted key: ``params`` (the config's ``parameters``
section) and ``model_params`` (each model's ``parameters``). Tensor-level methods give a ``merge``
function that the streaming engine (:mod:`.engine`) calls once per tensor with a :class:`TensorJob`;
adapter-level methods (AdaMergeX) are run whole by :mod:`.adapters`.

Checks a method needs are declared with it, so the engine never tests a method's name: ``check_models``
runs when the config is read (parameters and roles, no checkpoint opened), ``check_plan`` once the inputs'
tensors are known and before anything is written (e.g. block numbers against the model's blocks).

The shape of this follows mergekit's ``merge_methods/registry.py`` (one generalized task-vector kernel
behind several named methods); the code is this project's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch

from cmmerge.errors import ConfigError
from cmmerge.merge.layers import BlockLayout

if TYPE_CHECKING:
    from cmmerge.merge.plan import MergePlan


@dataclass
class TensorJob:
    """Everything a tensor-level method sees of one tensor: name, inputs (stored dtype) and layout."""

    name: str
    base: torch.Tensor | None
    models: list[torch.Tensor]
    layout: BlockLayout
    compute_dtype: torch.dtype = torch.float32
    out_dtype: torch.dtype = torch.float32


@dataclass(frozen=True)
class MergeMethod:
    name: str
    summary: str
    params: type
    model_params: type
    level: Literal["tensor", "adapter"] = "tensor"
    needs_base: bool = True
    min_models: int = 1
    max_models: int | None = None
    merge: Callable[[TensorJob, Any, list[Any]], torch.Tensor] | None = None
    # cross-model checks (roles, counts) once the typed params are known: (params, model_params, where)
    check_models: Callable[[Any, list[Any], str], None] | None = None
    # checks against the inputs' tensors (block counts …) before anything is written: (plan, params, where);
    # raises a MergeError naming ``where``'s key
    check_plan: Callable[[MergePlan, Any, str], None] | None = None


_REGISTRY: dict[str, MergeMethod] = {}


def register(method: MergeMethod) -> MergeMethod:
    if method.name in _REGISTRY:
        raise ValueError(f"merge method {method.name!r} is registered twice")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str, where: str = "merge_method") -> MergeMethod:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ConfigError(f"{where}: unknown merge method {name!r}; expected one of {', '.join(available())}")
    return _REGISTRY[name]


def available() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def _ensure_loaded() -> None:
    # the method modules register themselves on import
    from cmmerge.merge import adapters, methods  # noqa: F401
