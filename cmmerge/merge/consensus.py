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


def elect_sign(deltas: Sequence[torch.Tensor], method: SignMethod = "total") -> torch.Tensor:
    """The elected sign (+1/−1, same dtype as the deltas) of each entry."""
    acc = torch.zeros_like(deltas[0])
    for d in deltas:
        acc += d if method == "total" else torch.sign(d)
    return torch.where(acc >= 0, 1.0, -1.0).to(acc.dtype)


def disjoint_merge(
    deltas: Sequence[torch.Tensor],
    weights: Sequence[float],
    sign_method: SignMethod = "total",
    divide_by: DivideBy = "count",
    elect_on_weighted: bool = False,
) -> torch.Tensor:
    """``Σ_{i∈A} w_i τ̂_i / d``: the TIES merge of trimmed task vectors (see the module docstring)."""
    if elect_on_weighted:
        gamma = elect_sign([d * w for d, w in zip(deltas, weights, strict=True)], sign_method)
    else:
        gamma = elect_sign(deltas, sign_method)
    positive = gamma > 0
    total = torch.zeros_like(deltas[0])
    denom = torch.zeros_like(deltas[0])
    for d, w in zip(deltas, weights, strict=True):
        # agree: strictly the elected sign (zeros, i.e. trimmed entries, never agree); a negative
        # weight flips the sign that is compared when the election is on weighted deltas
        flip = elect_on_weighted and w < 0
        agree = torch.where(positive, d < 0, d > 0) if flip else torch.where(positive, d > 0, d < 0)
        total.add_(torch.where(agree, d, 0.0), alpha=w)
        denom.add_(agree.to(denom.dtype), alpha=1.0 if divide_by == "count" else w)
    if divide_by == "count":
        denom.clamp_(min=1.0)
    else:
        denom = torch.where(denom == 0, 1.0, denom)
    return total.div_(denom)
