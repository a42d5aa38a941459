"""Task-vector merges: one generalized kernel behind task arithmetic, TIES, DARE and model soups.

With base weights ``θ_0``, fine-tuned weights ``θ_i`` and task vectors ``τ_i = θ_i − θ_0``:

- task arithmetic (Ilharco et al. 2023, "Editing Models with Task Arithmetic"):
  ``θ = θ_0 + λ Σ_i w_i τ_i`` (``w_i`` is the per-task λ; negative values subtract a task);
- TIES (Yadav et al. 2023): ``θ = θ_0 + λ · disjoint_mean_i(w_i · trim_{d_i}(τ_i))`` where
  ``trim_d`` keeps the top ``d`` fraction of entries by magnitude (:mod:`.sparsify`) and the
  disjoint mean averages only entries that agree with the elected sign (:mod:`.consensus`);
- DARE (Yu et al. 2024): ``trim`` replaced by a random drop with rate ``p = 1 − d`` and rescaling
  by ``1/(1 − p)``; ``dare_linear`` then sums like task arithmetic, ``dare_ties`` uses the TIES
  election and disjoint mean;
- linear / model soup (Wortsman et al. 2022, "Model soups"): ``θ = Σ_i w_i θ_i / Σ_i w_i``
  (or without the division when ``normalize`` is off).

The kernels are pure functions over tensors. They take the inputs in their stored dtype, compute in
``compute_dtype`` (float32 by default) one flat chunk at a time, so the working memory for a big
tensor is its inputs plus a few chunk-sized temporaries (plus, while a magnitude threshold is
selected, the entries of ``|τ_i|`` near it, gathered chunk by chunk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from cmmerge.merge.consensus import DivideBy, SignMethod, disjoint_merge
from cmmerge.merge.sparsify import (
    TopK,
    dare_drop,
    keep_count,
    sample_step,
    topk_mask,
    topk_threshold_streamed,
)

Trim = Literal["magnitude", "random"]
CHUNK = 1 << 18  # entries per chunk: 1 MB per float32 temporary, so a chunk's passes run in cache


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(n, start + size)


def merge_task_vectors(
    base: torch.Tensor,
    models: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    lam: float = 1.0,
    trim: Trim | None = None,
    densities: Sequence[float] | None = None,
    consensus: SignMethod | None = None,
    divide_by: DivideBy = "count",
    elect_on_weighted: bool = False,
    seeds: Sequence[int] | None = None,
    compute_dtype: torch.dtype = torch.float32,
    out_dtype: torch.dtype | None = None,
    chunk: int = CHUNK,
) -> torch.Tensor:
    """``θ_0 + λ · combine_i(w_i · trim(θ_i − θ_0))``: the generalized task-vector merge.

    ``combine`` is a plain sum without ``consensus`` and the TIES disjoint mean with it
    (``consensus`` = the sign election method). ``trim`` is ``None``, ``"magnitude"`` (top-k by
    ``|τ|``, TIES) or ``"random"`` (DARE, seeded per model by ``seeds``). Returns a tensor of the
    base's shape in ``out_dtype`` (default: ``compute_dtype``).
    """
    if len(models) != len(weights):
        raise ValueError("one weight per model is required")
    if trim is not None and (densities is None or len(densities) != len(models)):
        raise ValueError("trim needs one density per model")
    out_dtype = out_dtype or compute_dtype
    shape = base.shape
    b_flat = base.reshape(-1)
    m_flat = [m.reshape(-1) for m in models]
    n = b_flat.numel()
    out = torch.empty(n, dtype=out_dtype)
    if n == 0:
        return out.reshape(shape)

    selections: list[TopK | None] = [None] * len(models)
    dropped: list[torch.Tensor | None] = [None] * len(models)
    if trim == "magnitude":
        step = sample_step(n)
        b_sample = b_flat[::step].to(compute_dtype)
        for i, m in enumerate(m_flat):
            if densities[i] >= 1:
                selections[i] = TopK(0.0, 0, keep_all=True)
                continue

            def magnitudes(m=m):
                for s, e in _chunks(n, chunk):
                    # torch.sub allocates: .to() of an input already in compute_dtype is the input itself
                    yield torch.sub(m[s:e].to(compute_dtype), b_flat[s:e].to(compute_dtype)).abs_()

            sample = (m[::step].to(compute_dtype) - b_sample).abs_()
            selections[i] = topk_threshold_streamed(magnitudes, sample, n, keep_count(n, densities[i]))
    elif trim == "random":
        if seeds is None or len(seeds) != len(models):
            raise ValueError("random trim needs one seed per model")
        base_c = b_flat.to(compute_dtype)
        for i, m in enumerate(m_flat):
            dropped[i] = dare_drop(m.to(compute_dtype) - base_c, densities[i], seeds[i])
        del base_c

    equal_seen = [0] * len(models)
    for s, e in _chunks(n, chunk):
        b = b_flat[s:e].to(compute_dtype, copy=True)  # accumulated into: never a view of the input
        deltas = []
        for i, m in enumerate(m_flat):
            if dropped[i] is not None:
                d = dropped[i][s:e]
            else:
                d = m[s:e].to(compute_dtype) - b
                if selections[i] is not None and not selections[i].keep_all:
                    mask, equal_seen[i] = topk_mask(d.abs(), selections[i], equal_seen[i])
                    d = d.mul_(mask)
            deltas.append(d)
        if consensus is not None:
            b.add_(disjoint_merge(deltas, weights, consensus, divide_by, elect_on_weighted), alpha=lam)
        else:
            for d, w in zip(deltas, weights, strict=True):
                b.add_(d, alpha=lam * w)
        out[s:e] = b
    return out.reshape(shape)


def weighted_average(
    models: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    normalize: bool = True,
    compute_dtype: torch.dtype = torch.float32,
    out_dtype: torch.dtype | None = None,
    chunk: int = CHUNK,
) -> torch.Tensor:
    """Linear merge / model soup: ``Σ_i w_i θ_i / Σ_i w_i`` (no division if ``normalize`` is false)."""
    total = float(sum(weights))
    if normalize and abs(total) < 1e-12:
        raise ValueError("the weights of a normalized linear merge sum to zero")
    scale = 1.0 / total if normalize else 1.0
    out_dtype = out_dtype or compute_dtype
    flats = [m.reshape(-1) for m in models]
    n = flats[0].numel()
    out = torch.empty(n, dtype=out_dtype)
    for s, e in _chunks(n, chunk):
        acc = torch.zeros(e - s, dtype=compute_dtype)
        for m, w in zip(flats, weights, strict=True):
            acc.add_(m[s:e].to(compute_dtype), alpha=w)
        out[s:e] = acc.mul_(scale)
    return out.reshape(models[0].shape)
