"""TIES sign election and disjoint mean, fused into one pass over a chunk of task vectors.

For (trimmed) task vectors ``τ̂_1 … τ̂_n`` and weights ``w_i`` (Yadav et al. 2023, steps *elect* and
*disjoint merge*):

- elected sign ``γ = sgn(Σ_i τ̂_i)`` (``total``: by mass) or ``γ = sgn(Σ_i sgn τ̂_i)`` (``frequency``:
  by count); a tie (sum 0) elects ``+``, as peft and mergekit do;
- agreeing set ``A = {i : sgn τ̂_i = γ}`` (zeros never agree);
- merged ``τ_m = Σ_{i∈A} w_i τ̂_i / d`` with ``d = max(|A|, 1)`` (``divide_by="count"``, peft) or
  ``d = Σ_{i∈A} w_i`` (``divide_by="weight"``, mergekit's ``normalize``; 1 where it is 0).

``elect_on_weighted`` elects the sign on ``w_i τ̂_i`` instead of ``τ̂_i`` and tests agreement on
``sgn(w_i τ̂_i)`` too (mergekit's behaviour, see mergekit issue 474): with positive weights only the
election can differ (``Σ w_i τ̂_i`` vs ``Σ τ̂_i``); a negative weight also flips which entries of that
model agree. With equal positive weights the two coincide. mergekit 0.1.5's ``ties`` is therefore
``elect_on_weighted=True, divide_by="weight"`` (its ``normalize: true`` default).

peft's ``calculate_majority_sign_mask`` + ``disjoint_merge`` compute the same thing on a stacked
``(n, …)`` tensor with a float mask; this version never stacks, keeps one running sum per quantity,
and is what the engine calls chunk by chunk (``tests/merge/test_methods.py`` checks it equals
peft's; ``benchmarks/merge.py --micro`` times both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

SignMethod = Literal["total", "frequency"]
DivideBy = Literal["count", "weight"]


def _sign_weight(w: float, elect_on_weighted: bool) -> float:
    """The factor of ``sgn τ̂_i`` in a frequency election: ``sgn(w_i τ̂_i) = sgn(w_i) sgn(τ̂_i)``."""
    if not elect_on_weighted:
        return 1.0
    return 1.0 if w > 0 else -1.0 if w < 0 else 0.0


def elect_sign(
    deltas: Sequence[torch.Tensor],
    method: SignMethod = "total",
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """The elected sign (+1/−1, same dtype as the deltas) of each entry.

    With ``weights`` the election is on ``w_i τ̂_i`` (mergekit's behaviour) without materialising them.
    """
    weighted = weights is not None
    weights = weights if weighted else [1.0] * len(deltas)
    acc = torch.zeros_like(deltas[0])
    for d, w in zip(deltas, weights, strict=True):
        if method == "total":
            acc.add_(d, alpha=w)
        elif s := _sign_weight(w, weighted):
            acc.add_(torch.sign(d), alpha=s)
    return torch.where(acc >= 0, 1.0, -1.0).to(acc.dtype)


def disjoint_merge(
    deltas: Sequence[torch.Tensor],
    weights: Sequence[float],
    sign_method: SignMethod = "total",
    divide_by: DivideBy = "count",
    elect_on_weighted: bool = False,
) -> torch.Tensor:
    """``Σ_{i∈A} w_i τ̂_i / d``: the TIES merge of trimmed task vectors (see the module docstring).

    Computed as ``γ · Σ_i w_i relu(γ τ̂_i) / d``: ``relu(γ τ̂_i)`` is ``|τ̂_i|`` exactly where model i
    agrees with the elected sign ``γ`` and 0 elsewhere (zeros never agree), so agreement needs no
    boolean masks or ``where``; its sign is the agreement indicator that ``d`` counts. Five float
    passes per model; ``benchmarks/merge.py --micro`` times it against peft's masked form.
    """
    gamma = elect_sign(deltas, sign_method, weights if elect_on_weighted else None)
    total = torch.zeros_like(gamma)
    denom = torch.zeros_like(gamma)
    agree = torch.empty_like(gamma)
    for d, w in zip(deltas, weights, strict=True):
        # a negative weight flips the sign compared when the election is on weighted deltas
        flip = elect_on_weighted and w < 0
        torch.mul(d, gamma, out=agree)
        if flip:
            agree.neg_()
        agree.clamp_(min=0)
        # on agreeing entries τ̂_i = ±γ·agree (− when flipped); the final ·γ is applied once below
        total.add_(agree, alpha=-w if flip else w)
        denom.add_(agree.sign_(), alpha=1.0 if divide_by == "count" else w)
    if divide_by == "count":
        denom.clamp_(min=1.0)
    else:
        denom = torch.where(denom == 0, 1.0, denom)
    return total.mul_(gamma).div_(denom)
