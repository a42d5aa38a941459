"""Sparsifying task vectors: exact magnitude top-k (TIES) and seeded random drops (DARE).

Magnitude pruning keeps the ``k = ⌊density · n⌋`` entries of largest ``|τ|`` and zeroes the rest
(Yadav et al. 2023, "TIES-Merging: Resolving Interference When Merging Models", step *trim*).
peft's ``magnitude_based_pruning`` does this with ``torch.topk(k)``, which on CPU costs about as much
as a sort; here the k-th largest magnitude is found by *selection* instead:

1. a strided sample of ``|τ|`` brackets the threshold between two sample quantiles ``lo ≤ t ≤ hi``;
2. one pass counts the entries above ``hi`` and gathers the few in ``[lo, hi]`` (chunk by chunk,
   :func:`topk_threshold_streamed`, so the magnitudes never need to exist as one tensor);
3. ``torch.kthvalue`` on that small candidate set gives the exact threshold ``t``.

If the bracket misses (an adversarial layout), it falls back to ``kthvalue`` over the whole tensor, so
the result is always exact. Entries equal to ``t`` are kept in index order until exactly ``k`` are
kept, so the mask is deterministic even with ties (``topk`` breaks ties arbitrarily; on continuous
inputs both agree, which ``tests/merge/test_methods.py`` checks against peft).

DARE (Yu et al. 2024, "Language Models are Super Mario: Absorbing Abilities from Homologous Models as
a Free Lunch") drops each entry with probability ``p = 1 − density`` and rescales the survivors by
``1/(1 − p)``. The drop itself is peft's ``prune(..., method="random", rescale=True)``; what this
module adds is the seeding: every (tensor name, model) pair gets its own generator seed derived from
the merge seed, so results do not depend on the order in which tensors are visited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

# Sample size for bracketing the threshold; the bracket half-width is a few standard errors of a
# quantile estimate from this many points, so the candidate set is ~1-2 % of a big tensor.
_SAMPLE = 1 << 16
_SMALL = 1 << 17  # below this many entries a plain kthvalue is already cheap


@dataclass(frozen=True)
class TopK:
    """The magnitude mask of a top-k selection, in a form that can be applied chunk by chunk.

    Keep ``|x| > threshold``, and of the entries with ``|x| == threshold`` the first ``n_equal`` in
    flattened index order. ``keep_all`` short-cuts density 1.
    """

    threshold: float
    n_equal: int
    keep_all: bool = False


def sample_step(n: int) -> int:
    """The stride of the sample that brackets a threshold among ``n`` magnitudes (about 65k entries)."""
    return max(1, n // _SAMPLE)


def keep_count(numel: int, density: float) -> int:
    """``k = ⌊density · n⌋``, the number of entries TIES keeps (peft and mergekit use the same)."""
    return int(density * numel)


def topk_threshold(magnitudes: torch.Tensor, k: int) -> TopK:
    """Describe the top-``k`` set of the flat non-negative tensor ``magnitudes`` (not modified)."""
    flat = magnitudes.reshape(-1)
    n = flat.numel()
    return topk_threshold_streamed(lambda: iter((flat,)), flat[:: sample_step(n)], n, k)


def topk_threshold_streamed(chunks: Callable[[], Iterable[torch.Tensor]], sample: torch.Tensor, n: int, k: int) -> TopK:
    """:func:`topk_threshold` of magnitudes that are only ever produced chunk by chunk.

    ``chunks()`` yields the ``n`` magnitudes as flat chunks in index order (it is called once, and a
    second time only if the bracket misses); ``sample`` is a strided sample of them (about
    ``_SAMPLE`` entries) used to bracket the threshold. The merge engine computes ``|θ_i − θ_0|``
    per chunk this way, so the count and the gathering run while a chunk is in cache and no
    model-sized buffer of magnitudes is ever held.
    """
    if k >= n:
        return TopK(threshold=0.0, n_equal=0, keep_all=True)
    if k <= 0:
        return TopK(threshold=float("inf"), n_equal=0)
    thr, n_greater = _kth_largest(chunks, sample, n, k)
    return TopK(threshold=thr, n_equal=k - n_greater)


def _kth_largest(
    chunks: Callable[[], Iterable[torch.Tensor]], sample: torch.Tensor, n: int, k: int
) -> tuple[float, int]:
    """The k-th largest value ``t`` of the chunks and the number of entries strictly greater than ``t``."""
    if n > _SMALL:
        # Bracket the k-th largest with quantiles of the sample, then select inside the bracket.
        sample = sample.float()
        q = 1.0 - k / n
        half = 4.0 * (q * (1 - q) / sample.numel()) ** 0.5 + 2.0 / sample.numel()
        lo = float(torch.quantile(sample, max(0.0, q - half)))
        hi = float(torch.quantile(sample, min(1.0, q + half)))
        n_above, inside = 0, []
        for c in chunks():
            n_above += int(torch.count_nonzero(c > hi))
            inside.append(c[(c >= lo) & (c <= hi)])
        if n_above < k:
            candidates = torch.cat(inside)
            rank = k - n_above  # the threshold is the rank-th largest candidate
            if rank <= candidates.numel():
                thr = torch.kthvalue(candidates, candidates.numel() - rank + 1).values
                return float(thr), n_above + int(torch.count_nonzero(candidates > thr))
        del inside
        # the bracket missed (an adversarial layout): fall through to the exact full selection
    flat = torch.cat([c.reshape(-1) for c in chunks()])
    thr = torch.kthvalue(flat, n - k + 1).values
    return float(thr), int(torch.count_nonzero(flat > thr))


def topk_mask(magnitudes: torch.Tensor, sel: TopK, equal_seen: int = 0) -> tuple[torch.Tensor, int]:
    """The boolean keep-mask of one (flat) chunk of ``magnitudes`` for selection ``sel``.

    Chunks must be visited in index order; ``equal_seen`` counts the threshold-equal entries kept in
    earlier chunks, and the updated count is returned with the mask.
    """
    if sel.keep_all:
        return torch.ones_like(magnitudes, dtype=torch.bool), equal_seen
    mask = magnitudes > sel.threshold
    budget = sel.n_equal - equal_seen
    if budget <= 0:
        return mask, equal_seen
    eq = magnitudes == sel.threshold
    n_eq = int(torch.count_nonzero(eq))
    if n_eq <= budget:
        return mask | eq, equal_seen + n_eq
    # more ties than room: keep the first `budget` of them in index order
    first = eq & (torch.cumsum(eq.reshape(-1), 0).reshape(eq.shape) <= budget)
    return mask | first, equal_seen + budget


def magnitude_prune(tensor: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the ``⌊density · n⌋`` largest-magnitude entries of ``tensor``, zero the rest.

    Equals peft's ``magnitude_based_pruning`` whenever the magnitudes have no ties at the threshold.
    """
    if density >= 1:
        return tensor.clone()
    mags = tensor.abs().reshape(-1)
    sel = topk_threshold(mags, keep_count(tensor.numel(), density))
    mask, _ = topk_mask(mags, sel)
    return tensor * mask.reshape(tensor.shape)


def tensor_seed(seed: int, tensor_name: str, model_index: int) -> int:
    """A 63-bit generator seed for one (tensor, model): independent of the order tensors are visited."""
    digest = hashlib.sha256(f"{seed}\0{model_index}\0{tensor_name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def dare_drop(tensor: torch.Tensor, density: float, seed: int, rescale: bool = True) -> torch.Tensor:
    """DARE: keep each entry with probability ``density`` (drop rate ``p = 1 − density``), scale by 1/density.

    ``seed`` seeds a private copy of torch's RNG, so the global RNG is untouched and the same
    ``seed`` always gives the same mask. The drop is peft's ``prune(method="random")``.
    """
    from peft.utils.merge_utils import prune

    if density >= 1:
        return tensor.clone()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return prune(tensor, density, method="random", rescale=rescale)
