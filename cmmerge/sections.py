"""Params sections whose models used to live in stage scripts: ``model`` and ``merge``.

Kept in a module of their own that imports nothing heavy, so the ``base`` and ``merge`` stages depend on
these few lines only (every params model belongs to the library, where ``cmmerge.schema`` and the
``cmmerge config`` commands can validate a whole params file before any stage runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cmmerge.params import require


@dataclass
class ModelParams:
    """``model`` section: the base checkpoint (hub id, local folder, or ``pkg:<package>``)."""

    name: str
    seed: int = 13  # initialises a missing pre-training head
    trust_remote_code: bool = False


@dataclass
class TiesParams:
    """``merge.ties``: TIES(θ_base; τ_cpt [, τ_en])."""

    density: float = 0.2
    lam: float = field(default=1.0, metadata={"key": "lambda"})
    sign_election: Literal["total", "frequency"] = "total"
    with_english: bool = True  # add τ_en = θ_en − θ_base (multi-source merging)

    def validate(self, where: str) -> None:
        require(0.0 < self.density <= 1.0, f"{where}.density must be in (0, 1], got {self.density}")


@dataclass
class SwapParams:
    """``merge.swap``, Bandarkar et al. 2024: the outer blocks (and embeddings) from the code-mixed expert, the
    rest from the English task expert."""

    bottom: int = 1
    top: int = 1
    transition: int = 0

    def validate(self, where: str) -> None:
        for key in ("bottom", "top", "transition"):
            require(getattr(self, key) >= 0, f"{where}.{key} must be >= 0, got {getattr(self, key)}")


@dataclass
class MergeParams:
    """``merge`` section of the pipeline's merge stage."""

    # task arithmetic θ_base + λ·τ_cpt: a number, or "dev" for the λ of the best dev macro-F1 of the sweep stage
    lam: float | Literal["dev"] = field(default=0.5, metadata={"key": "lambda"})
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    ties: TiesParams = field(default_factory=TiesParams)
    swap: SwapParams = field(default_factory=SwapParams)
