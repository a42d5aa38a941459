"""Layer swapping and reverting: per-tensor choices between whole checkpoints, by block position.

Layer swapping (Bandarkar et al. 2024, "Layer Swapping for Zero-Shot Cross-Lingual Transfer in
Large Language Models"): with ``L`` blocks, the bottom ``b`` and top ``u`` blocks come from the
*outer* expert (in the paper, the language expert) and the blocks in between from the *inner* expert
(the task expert). ``t`` optional transition blocks on the inner side of each boundary blend both,
``θ = α θ_outer + (1 − α) θ_inner`` (``α`` = ``transition_weight``)::

    block:   0 … b−1 | b … b+t−1 | b+t … L−u−t−1 | L−u−t … L−u−1 | L−u … L−1
    source:  outer   | blend     | inner         | blend         | outer

Embeddings and the remaining tensors (final norm, head) come from the expert named by
``embeddings_from`` / ``head_from`` (``outer``, ``inner`` or ``average``).

Reverting (Bandarkar & Peng 2025, "The Unreasonable Effectiveness of Model Merging for Cross-Lingual
Transfer in LLMs"): the post-hoc alternative to freezing. After fine-tuning ``θ_ft`` from ``θ_0``, the
update of a chosen subset is reset: ``θ = θ_0 + m ⊙ (θ_ft − θ_0)`` with ``m = 0`` on whole reverted
blocks (and optionally the embeddings / other tensors), and, with ``fraction = f > 0``, also on the
``⌊f · n⌋`` smallest-magnitude entries of every other tensor's update.
"""

from __future__ import annotations

from typing import Literal

import torch

from cmmerge.merge.layers import Part
from cmmerge.merge.sparsify import keep_count, topk_mask, topk_threshold

Source = Literal["outer", "inner", "average"]


def swap_weight(
    part: Part,
    block: int | None,
    num_blocks: int,
    bottom: int,
    top: int,
    transition: int = 0,
    transition_weight: float = 0.5,
    embeddings_from: Source = "outer",
    head_from: Source = "outer",
) -> float:
    """The share ``α`` of the outer expert in a tensor (1: outer only, 0: inner only)."""
    if part != "block" or block is None:
        source = embeddings_from if part == "embeddings" else head_from
        return {"outer": 1.0, "inner": 0.0, "average": 0.5}[source]
    if block < bottom or block >= num_blocks - top:
        return 1.0
    if block < bottom + transition or block >= num_blocks - top - transition:
        return transition_weight
    return 0.0


def blend(outer: torch.Tensor, inner: torch.Tensor, alpha: float, compute_dtype=torch.float32) -> torch.Tensor:
    """``α θ_outer + (1 − α) θ_inner``; α ∈ {0, 1} copies the source exactly (no rounding)."""
    if alpha == 1.0:
        return outer.clone()
    if alpha == 0.0:
        return inner.clone()
    return outer.to(compute_dtype) * alpha + inner.to(compute_dtype) * (1.0 - alpha)


def revert(
    base: torch.Tensor,
    tuned: torch.Tensor,
    whole: bool,
    fraction: float = 0.0,
    compute_dtype=torch.float32,
) -> torch.Tensor:
    """``θ_0 + m ⊙ (θ_ft − θ_0)``: ``m = 0`` everywhere if ``whole``, else on the ``fraction``
    smallest-magnitude entries of the update (ties at the threshold: later indices reverted first)."""
    if whole:
        return base.clone()
    if fraction <= 0.0:
        return tuned.clone()
    b = base.to(compute_dtype)
    delta = tuned.to(compute_dtype) - b
    mags = delta.abs().reshape(-1)
    n = mags.numel()
    sel = topk_threshold(mags, n - keep_count(n, fraction))
    mask, _ = topk_mask(mags, sel)
    return b + delta * mask.reshape(delta.shape)
