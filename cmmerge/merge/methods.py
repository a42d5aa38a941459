"""The tensor-level merge methods, registered by name with their typed parameters.

Each entry binds a pure kernel (:mod:`.task_vectors`, :mod:`.swap`) to the parameters a config gives.
Formulas and references are in the kernels' docstrings and in ``docs/merge.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cmmerge.errors import MergeError
from cmmerge.merge.consensus import DivideBy, SignMethod
from cmmerge.merge.layers import resolve_block
from cmmerge.merge.registry import MergeMethod, TensorJob, register
from cmmerge.merge.sparsify import tensor_seed
from cmmerge.merge.swap import Source, blend, revert, swap_weight
from cmmerge.merge.task_vectors import merge_task_vectors, weighted_average
from cmmerge.params import require

if TYPE_CHECKING:
    from cmmerge.merge.plan import MergePlan


def _lambda():
    """The global scale λ, read from the key ``lambda`` (a Python keyword, so the field is ``lam``)."""
    return field(default=1.0, metadata={"key": "lambda"})


def check_density(value: float | None, key: str) -> None:
    if value is not None:
        require(0.0 < value <= 1.0, f"{key} must be in (0, 1], got {value!r}")


# --- parameter types ---------------------------------------------------------------------------


@dataclass
class WeightParams:
    """Per-model parameters of linear and task arithmetic: ``weight`` is ``w_i`` (the per-task λ_i)."""

    weight: float = 1.0


@dataclass
class SparseModelParams:
    """Per-model parameters of TIES/DARE; ``density`` overrides the method-wide one."""

    weight: float = 1.0
    density: float | None = None

    def validate(self, where: str) -> None:
        check_density(self.density, f"{where}.density")


@dataclass
class LinearParams:
    normalize: bool = True


@dataclass
class TaskArithmeticParams:
    lam: float = _lambda()


@dataclass
class TiesParams:
    lam: float = _lambda()
    density: float | None = None
    sign_election: SignMethod = "total"
    divide_by: DivideBy = "count"
    elect_on_weighted: bool = False

    def validate(self, where: str) -> None:
        check_density(self.density, f"{where}.density")


@dataclass
class DareLinearParams:
    lam: float = _lambda()
    density: float | None = None
    seed: int = 0

    def validate(self, where: str) -> None:
        check_density(self.density, f"{where}.density")


@dataclass
class DareTiesParams(TiesParams):
    seed: int = 0


@dataclass
class LayerSwapParams:
    bottom: int
    top: int
    transition: int = 0
    transition_weight: float = 0.5
    embeddings_from: Source = "outer"
    head_from: Source = "outer"

    def validate(self, where: str) -> None:
        for key in ("bottom", "top", "transition"):
            require(getattr(self, key) >= 0, f"{where}.{key} must be >= 0, got {getattr(self, key)}")
        w = self.transition_weight
        require(0.0 <= w <= 1.0, f"{where}.transition_weight must be in [0, 1], got {w!r}")


@dataclass
class RoleParams:
    role: Literal["outer", "inner"]


@dataclass
class RevertParams:
    blocks: list[int] = field(default_factory=list)
    block_range: list[int] | None = None
    embeddings: bool = False
    head: bool = False
    fraction: float = 0.0

    def validate(self, where: str) -> None:
        require(0.0 <= self.fraction < 1.0, f"{where}.fraction must be in [0, 1), got {self.fraction!r}")
        if self.block_range is not None:
            require(
                len(self.block_range) == 2,
                f"{where}.block_range must be [first, last] (two block numbers), got {self.block_range!r}",
            )


@dataclass
class NoModelParams:
    pass


# --- kernels bound to parameters ---------------------------------------------------------------


def _densities(params, model_params: list[SparseModelParams]) -> list[float]:
    return [m.density if m.density is not None else params.density for m in model_params]


def _check_densities(params, model_params: list[SparseModelParams], where: str) -> None:
    for i, d in enumerate(_densities(params, model_params)):
        require(
            d is not None,
            f"{where}.models[{i}].parameters.density is required (or set {where}.parameters.density)",
        )


def _linear(job: TensorJob, p: LinearParams, mps: list[WeightParams]):
    return weighted_average(
        job.models,
        [m.weight for m in mps],
        normalize=p.normalize,
        compute_dtype=job.compute_dtype,
        out_dtype=job.out_dtype,
    )


def _task_arithmetic(job: TensorJob, p: TaskArithmeticParams, mps: list[WeightParams]):
    return merge_task_vectors(
        job.base,
        job.models,
        [m.weight for m in mps],
        lam=p.lam,
        compute_dtype=job.compute_dtype,
        out_dtype=job.out_dtype,
    )


def _ties(job: TensorJob, p: TiesParams, mps: list[SparseModelParams]):
    return merge_task_vectors(
        job.base,
        job.models,
        [m.weight for m in mps],
        lam=p.lam,
        trim="magnitude",
        densities=_densities(p, mps),
        consensus=p.sign_election,
        divide_by=p.divide_by,
        elect_on_weighted=p.elect_on_weighted,
        compute_dtype=job.compute_dtype,
        out_dtype=job.out_dtype,
    )


def _dare(job: TensorJob, p, mps: list[SparseModelParams], ties: bool):
    return merge_task_vectors(
        job.base,
        job.models,
        [m.weight for m in mps],
        lam=p.lam,
        trim="random",
        densities=_densities(p, mps),
        seeds=[tensor_seed(p.seed, job.name, i) for i in range(len(mps))],
        consensus=p.sign_election if ties else None,
        divide_by=p.divide_by if ties else "count",
        elect_on_weighted=p.elect_on_weighted if ties else False,
        compute_dtype=job.compute_dtype,
        out_dtype=job.out_dtype,
    )


def _roles(mps: list[RoleParams]) -> tuple[int, int]:
    roles = [m.role for m in mps]
    return roles.index("outer"), roles.index("inner")


def _check_roles(p: LayerSwapParams, mps: list[RoleParams], where: str) -> None:
    roles = sorted(m.role for m in mps)
    require(
        roles == ["inner", "outer"],
        f"{where}.models: layer_swap needs exactly one model with role 'outer' and one with role 'inner', got {roles}",
    )


def _check_layer_swap_plan(plan: MergePlan, p: LayerSwapParams, where: str) -> None:
    """The swapped and blended blocks must fit in the model (otherwise the schedule would overlap)."""
    n = plan.layout.num_blocks
    used = p.bottom + p.top + 2 * p.transition
    if n == 0:
        raise MergeError(f"{where}: layer_swap found no numbered transformer blocks in the tensor names")
    if used > n:
        raise MergeError(
            f"{where}.parameters: bottom + top + 2·transition = {used} exceeds the {n} blocks of the model"
        )


def _layer_swap(job: TensorJob, p: LayerSwapParams, mps: list[RoleParams]):
    outer, inner = _roles(mps)
    alpha = swap_weight(
        job.layout.part(job.name),
        job.layout.block_index(job.name),
        job.layout.num_blocks,
        p.bottom,
        p.top,
        p.transition,
        p.transition_weight,
        p.embeddings_from,
        p.head_from,
    )
    return blend(job.models[outer], job.models[inner], alpha, job.compute_dtype).to(job.out_dtype)


def _check_revert_plan(plan: MergePlan, p: RevertParams, where: str) -> None:
    """Block numbers must name blocks of the model (a typo would otherwise revert nothing, silently)."""
    n = plan.layout.num_blocks
    named = list(p.blocks) + list(p.block_range or [])
    bad = [b for b in named if resolve_block(b, n) is None]
    if bad:
        raise MergeError(f"{where}.parameters: block number(s) {bad} outside the model's {n} blocks (0 … {n - 1})")
    if p.block_range is not None:
        first, last = (resolve_block(b, n) for b in p.block_range)
        if first > last:
            raise MergeError(f"{where}.parameters.block_range: first block {first} is above last block {last}")


def reverted_blocks(p: RevertParams, num_blocks: int) -> set[int]:
    """The block numbers ``blocks`` and ``block_range`` name (negative numbers count from the top).

    Numbers outside the model were refused by :func:`_check_revert_plan` before any tensor is merged.
    """
    out = {resolve_block(b, num_blocks) for b in p.blocks}
    if p.block_range is not None:
        first, last = (resolve_block(b, num_blocks) for b in p.block_range)
        out |= set(range(first, last + 1))
    return out


def _revert(job: TensorJob, p: RevertParams, mps: list[NoModelParams]):
    layout = job.layout
    part = layout.part(job.name)
    if part == "block":
        whole = layout.block_index(job.name) in reverted_blocks(p, layout.num_blocks)
    else:
        whole = p.embeddings if part == "embeddings" else p.head
    return revert(job.base, job.models[0], whole, p.fraction, job.compute_dtype).to(job.out_dtype)


# --- registration ------------------------------------------------------------------------------

register(
    MergeMethod(
        "linear",
        "weighted average of whole models (model soup): Σ w_i θ_i / Σ w_i",
        LinearParams,
        WeightParams,
        needs_base=False,
        merge=_linear,
    )
)
register(
    MergeMethod(
        "task_arithmetic",
        "θ_0 + λ Σ w_i (θ_i − θ_0)",
        TaskArithmeticParams,
        WeightParams,
        merge=_task_arithmetic,
    )
)
register(
    MergeMethod(
        "ties",
        "TIES: trim to top-density by |τ|, elect sign, disjoint mean, scale by λ",
        TiesParams,
        SparseModelParams,
        merge=_ties,
        check_models=_check_densities,
    )
)
register(
    MergeMethod(
        "dare_linear",
        "DARE drop (rate 1−density, rescaled) then θ_0 + λ Σ w_i τ̃_i",
        DareLinearParams,
        SparseModelParams,
        merge=lambda job, p, mps: _dare(job, p, mps, ties=False),
        check_models=_check_densities,
    )
)
register(
    MergeMethod(
        "dare_ties",
        "DARE drop (rate 1−density, rescaled) then TIES sign election and disjoint mean",
        DareTiesParams,
        SparseModelParams,
        merge=lambda job, p, mps: _dare(job, p, mps, ties=True),
        check_models=_check_densities,
    )
)
register(
    MergeMethod(
        "layer_swap",
        "bottom/top blocks from the outer expert, the middle from the inner expert",
        LayerSwapParams,
        RoleParams,
        needs_base=False,
        min_models=2,
        max_models=2,
        merge=_layer_swap,
        check_models=_check_roles,
        check_plan=_check_layer_swap_plan,
    )
)
register(
    MergeMethod(
        "revert",
        "reset chosen blocks / smallest updates of a fine-tuned model to the base",
        RevertParams,
        NoModelParams,
        min_models=1,
        max_models=1,
        merge=_revert,
        check_plan=_check_revert_plan,
    )
)
