"""Each merge kernel equals its formula on hand-made tensors, and agrees with peft's merge_utils.

mergekit is not a dependency, so its TIES is written out here from its documented behaviour
(``generalized_task_arithmetic`` in mergekit 0.1.5: sign election and agreement on *weighted* deltas,
division by the sum of the agreeing weights) and compared with cmmerge's compatibility mode; the
difference from the default (peft's) mode is shown on a case where it matters (mergekit issue 474).
"""

from __future__ import annotations

import pytest
import torch
from peft.utils import merge_utils as peft_mu

from cmmerge.merge.consensus import disjoint_merge, elect_sign
from cmmerge.merge.sparsify import (
    dare_drop,
    keep_count,
    magnitude_prune,
    sample_step,
    tensor_seed,
    topk_mask,
    topk_threshold,
    topk_threshold_streamed,
)
from cmmerge.merge.swap import blend, revert, swap_weight
from cmmerge.merge.task_vectors import merge_task_vectors, weighted_average


def _inputs(n_models: int = 3, shape=(37, 29), seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=g)
    models = [base + 0.1 * torch.randn(shape, generator=g) for _ in range(n_models)]
    return base, models


# --- task arithmetic, linear -----------------------------------------------------------------


def test_task_arithmetic_is_base_plus_scaled_sum_with_negative_lambda():
    base, models = _inputs()
    w, lam = [0.7, -0.4, 1.3], 0.8
    got = merge_task_vectors(base, models, w, lam=lam, chunk=100)  # several chunks
    want = base + lam * sum(wi * (m - base) for wi, m in zip(w, models, strict=True))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_task_arithmetic_equals_peft():
    base, models = _inputs()
    w = [0.5, 1.0, -0.3]
    got = merge_task_vectors(base, models, w)
    want = base + peft_mu.task_arithmetic([m - base for m in models], torch.tensor(w))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_linear_soup_normalized_and_not():
    _, models = _inputs()
    w = [1.0, 2.0, 3.0]
    torch.testing.assert_close(
        weighted_average(models, w, chunk=50), sum(wi * m for wi, m in zip(w, models, strict=True)) / 6.0
    )
    torch.testing.assert_close(
        weighted_average(models, w, normalize=False), sum(wi * m for wi, m in zip(w, models, strict=True))
    )
    with pytest.raises(ValueError, match="sum to zero"):
        weighted_average(models[:2], [1.0, -1.0])


def test_bf16_inputs_computed_in_float32_and_written_in_out_dtype():
    base, models = _inputs()
    b16, m16 = base.bfloat16(), [m.bfloat16() for m in models]
    got = merge_task_vectors(b16, m16, [1.0, 1.0, 1.0], lam=0.5, out_dtype=torch.bfloat16)
    want = (b16.float() + 0.5 * sum(m.float() - b16.float() for m in m16)).bfloat16()
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, want)


# --- TIES ----------------------------------------------------------------------------------------


def test_ties_by_hand():
    """A worked example: trim to 2 of 4 entries, elect by mass, disjoint mean, λ."""
    base = torch.zeros(4)
    t1 = torch.tensor([3.0, -1.0, 0.5, -2.0])  # keeps 3, -2
    t2 = torch.tensor([-1.0, 4.0, 0.1, -3.0])  # keeps 4, -3
    t3 = torch.tensor([2.0, -0.2, 0.3, 1.0])  # keeps 2, 1
    # trimmed: [3,0,0,-2], [0,4,0,-3], [2,0,0,1]; sums 5, 4, 0, -4 → signs +, +, +, −
    # agreeing: e0 {3,2} → 2.5; e1 {4} → 4; e2 none → 0; e3 {-2,-3} → -2.5
    got = merge_task_vectors(
        base, [t1, t2, t3], [1.0, 1.0, 1.0], lam=2.0, trim="magnitude", densities=[0.5] * 3, consensus="total"
    )
    torch.testing.assert_close(got, 2.0 * torch.tensor([2.5, 4.0, 0.0, -2.5]))


def test_sign_election_by_frequency_differs_from_mass():
    d = [torch.tensor([5.0]), torch.tensor([-1.0]), torch.tensor([-1.0])]
    assert elect_sign(d, "total").item() == 1.0
    assert elect_sign(d, "frequency").item() == -1.0
    assert elect_sign([torch.tensor([0.0])], "total").item() == 1.0  # a tie elects +, like peft


@pytest.mark.parametrize("sign", ["total", "frequency"])
@pytest.mark.parametrize("density", [0.2, 0.7, 1.0])
def test_ties_equals_peft(sign, density):
    base, models = _inputs(seed=1)
    w = [1.0, 0.6, 0.3]
    got = merge_task_vectors(
        base, models, w, lam=1.0, trim="magnitude", densities=[density] * 3, consensus=sign, chunk=128
    )
    want = base + peft_mu.ties([m - base for m in models], torch.tensor(w), density, majority_sign_method=sign)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_disjoint_merge_equals_peft_pieces():
    _, models = _inputs(n_models=4, seed=2)
    deltas = [magnitude_prune(m, 0.5) for m in models]
    w = [0.9, 1.1, 0.4, 2.0]
    stacked = torch.stack(deltas)
    mask = peft_mu.calculate_majority_sign_mask(stacked, "total")
    want = peft_mu.disjoint_merge(stacked * torch.tensor(w)[:, None, None], mask)
    torch.testing.assert_close(disjoint_merge(deltas, w), want, rtol=0, atol=1e-6)


def _masked_disjoint_merge(deltas, weights, sign_method, divide_by, elect_on_weighted):
    """The TIES elect + disjoint mean written with explicit sign masks on stacked deltas."""
    d = torch.stack(deltas)
    w = torch.tensor(weights).view(-1, *([1] * deltas[0].dim()))
    voters = d * w if elect_on_weighted else d
    votes = voters if sign_method == "total" else voters.sign()
    gamma = torch.where(votes.sum(0) >= 0, 1.0, -1.0)
    agree = voters.sign() == gamma  # zeros never agree
    mixed = (d * w * agree).sum(0)
    if divide_by == "count":
        return mixed / agree.sum(0).clamp(min=1)
    divisor = (w * agree).sum(0)
    return mixed / torch.where(divisor == 0, 1.0, divisor)


@pytest.mark.parametrize("sign_method", ["total", "frequency"])
@pytest.mark.parametrize("divide_by", ["count", "weight"])
@pytest.mark.parametrize("elect_on_weighted", [False, True])
def test_disjoint_merge_every_option_equals_masked_form(sign_method, divide_by, elect_on_weighted):
    _, models = _inputs(n_models=4, seed=5)
    deltas = [magnitude_prune(m, 0.5) for m in models]  # half the entries exactly zero
    w = [0.9, -0.7, 0.4, 2.0]  # a negative weight flips that model's vote when elections are weighted
    want = _masked_disjoint_merge(deltas, w, sign_method, divide_by, elect_on_weighted)
    got = disjoint_merge(deltas, w, sign_method, divide_by, elect_on_weighted)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def _mergekit_ties(base, models, weights, density, lam=1.0):
    """mergekit 0.1.5's TIES as its generalized_task_arithmetic computes it (normalize: true): the masked
    form with the election and agreement on weighted deltas and division by the agreeing weights."""
    trimmed = [magnitude_prune(m - base, density) for m in models]
    return base + lam * _masked_disjoint_merge(trimmed, weights, "total", "weight", True)


@pytest.mark.parametrize("weights", [[1.0, 0.5, 0.25], [1.0, -0.5, 2.0]])
def test_ties_mergekit_mode_equals_mergekit(weights):
    base, models = _inputs(seed=3)
    got = merge_task_vectors(
        base,
        models,
        weights,
        lam=0.9,
        trim="magnitude",
        densities=[0.4] * 3,
        consensus="total",
        divide_by="weight",
        elect_on_weighted=True,
    )
    torch.testing.assert_close(got, _mergekit_ties(base, models, weights, 0.4, lam=0.9), rtol=0, atol=1e-6)


def test_ties_default_differs_from_mergekit_only_with_unequal_weights():
    """mergekit elects on weighted deltas and divides by the agreeing weights (issue 474); with
    equal weights 1 both tools compute the same, which is what benchmarks/merge.py compares."""
    base = torch.zeros(1)
    models = [torch.tensor([1.0]), torch.tensor([-0.6])]
    kw = dict(trim="magnitude", densities=[1.0, 1.0], consensus="total")
    # unweighted: 1 − 0.6 > 0 elects +, the mean of the agreeing is w_0 · 1 / 1 = 0.25
    assert merge_task_vectors(base, models, [0.25, 1.0], **kw).item() == pytest.approx(0.25)
    # weighted: 0.25 − 0.6 < 0 elects −, mergekit gives (1 · −0.6) / 1
    assert _mergekit_ties(base, models, [0.25, 1.0], 1.0).item() == pytest.approx(-0.6)
    base, models = _inputs(seed=4)
    ours = merge_task_vectors(base, models, [1.0] * 3, trim="magnitude", densities=[0.3] * 3, consensus="total")
    torch.testing.assert_close(ours, _mergekit_ties(base, models, [1.0] * 3, 0.3), rtol=0, atol=1e-6)


# --- sparsification ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1000, 300_000])  # the second takes the sampled-bracket path
@pytest.mark.parametrize("density", [0.01, 0.2, 0.9])
def test_magnitude_prune_equals_peft(n, density):
    t = torch.randn(n, generator=torch.Generator().manual_seed(n))
    got = magnitude_prune(t, density)
    assert torch.equal(got, peft_mu.magnitude_based_pruning(t, density))
    assert int(torch.count_nonzero(got)) == keep_count(n, density)


def test_topk_with_ties_keeps_exactly_k_in_index_order_and_chunks_agree():
    mags = torch.tensor([1.0, 2.0, 2.0, 2.0, 0.5, 2.0, 3.0])
    sel = topk_threshold(mags, 3)  # 3.0 plus the first two 2.0s
    mask, _ = topk_mask(mags, sel)
    assert mask.tolist() == [False, True, True, False, False, False, True]
    m1, seen = topk_mask(mags[:2], sel)
    m2, _ = topk_mask(mags[2:], sel, seen)
    assert torch.equal(torch.cat([m1, m2]), mask)


def test_streamed_threshold_over_chunks_equals_one_tensor_also_when_the_bracket_misses():
    n = 400_000
    mags = torch.randn(n, generator=torch.Generator().manual_seed(7)).abs()
    # adversarial: every sampled entry is 0, so the sample brackets [0, 0] and the exact fallback runs
    adversarial = mags.clone()
    adversarial[:: sample_step(n)] = 0.0
    for flat in (mags, adversarial):
        for k in (1, 4_000, 200_000, n - 1):
            chunks = lambda flat=flat: iter(flat.split(65_536))  # noqa: E731
            got = topk_threshold_streamed(chunks, flat[:: sample_step(n)], n, k)
            assert got == topk_threshold(flat, k)
            assert int((flat > got.threshold).sum()) + got.n_equal == k


def test_ties_over_many_chunks_of_a_big_tensor_equals_peft():
    """The engine's path: magnitudes streamed chunk by chunk through the sampled bracket."""
    base, models = _inputs(shape=(600, 500), seed=8)
    w = [1.0, 0.5, 0.8]
    got = merge_task_vectors(base, models, w, trim="magnitude", densities=[0.2] * 3, consensus="total", chunk=70_000)
    want = base + peft_mu.ties([m - base for m in models], torch.tensor(w), 0.2, majority_sign_method="total")
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_dare_drop_is_peft_random_prune_seeded():
    t = torch.randn(50, 40)
    got = dare_drop(t, 0.3, seed=11)
    torch.manual_seed(11)
    want = peft_mu.prune(t, 0.3, method="random", rescale=True)
    assert torch.equal(got, want)
    kept = got != 0
    torch.testing.assert_close(got[kept], t[kept] / 0.3)  # rescaled by 1 / (1 − p)
    assert 0.2 < kept.float().mean() < 0.4
    assert torch.equal(dare_drop(t, 0.3, seed=11), got)  # seeded: the same mask again


def test_tensor_seed_depends_on_name_model_and_seed():
    seeds = {tensor_seed(0, "a", 0), tensor_seed(0, "a", 1), tensor_seed(0, "b", 0), tensor_seed(1, "a", 0)}
    assert len(seeds) == 4
    assert tensor_seed(0, "a", 0) == tensor_seed(0, "a", 0)


def test_dare_linear_and_dare_ties_formulas():
    base, models = _inputs(seed=5)
    seeds = [101, 202, 303]
    w = [1.0, 0.5, 0.8]
    dropped = [dare_drop(m - base, 0.4, s) for m, s in zip(models, seeds, strict=True)]
    got = merge_task_vectors(base, models, w, lam=0.7, trim="random", densities=[0.4] * 3, seeds=seeds)
    want = base + 0.7 * sum(wi * d for wi, d in zip(w, dropped, strict=True))
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    got = merge_task_vectors(base, models, w, trim="random", densities=[0.4] * 3, seeds=seeds, consensus="frequency")
    stacked = torch.stack(dropped)
    mask = peft_mu.calculate_majority_sign_mask(stacked, "frequency")
    want = base + peft_mu.disjoint_merge(stacked * torch.tensor(w)[:, None, None], mask)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


# --- layer swap and revert kernels ---------------------------------------------------------------


def test_swap_weight_schedule():
    # 10 blocks, bottom 2, top 3, transition 1: outer 0-1, blend 2, inner 3-5, blend 6, outer 7-9
    got = [swap_weight("block", i, 10, 2, 3, 1, 0.3) for i in range(10)]
    assert got == [1, 1, 0.3, 0, 0, 0, 0.3, 1, 1, 1]
    assert swap_weight("embeddings", None, 10, 2, 3, embeddings_from="inner") == 0.0
    assert swap_weight("other", None, 10, 2, 3, head_from="average") == 0.5
    a, b = torch.randn(5), torch.randn(5)
    torch.testing.assert_close(blend(a, b, 0.3), 0.3 * a + 0.7 * b)
    assert torch.equal(blend(a.bfloat16(), b.bfloat16(), 1.0), a.bfloat16())  # a copy is exact


def test_revert_whole_and_smallest_fraction():
    base = torch.zeros(10)
    tuned = torch.arange(1.0, 11.0) * torch.tensor([1, -1] * 5)
    assert torch.equal(revert(base, tuned, whole=True), base)
    assert torch.equal(revert(base, tuned, whole=False), tuned)
    got = revert(base, tuned, whole=False, fraction=0.3)  # the 3 smallest |updates| go back to 0
    assert torch.equal(got, torch.where(tuned.abs() <= 3, 0.0, tuned))
