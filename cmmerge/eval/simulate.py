"""Simulated runs of methods of known quality, to check how the report's test behaves where the truth is known.

One trial draws a test set and two methods of *equal* quality: each run answers an item correctly with
probability ``a``, drawn per run from N(accuracy, seed_sd) (the training seed's effect), and otherwise with a
wrong label at random. A calibrated test rejects "the two methods differ" in at most alpha of such trials.
tests/eval/test_significance.py asserts that of :func:`cmmerge.eval.stats.seed_item_test`, and
benchmarks/calibration.py measures the rejection rates of it and of the bootstrap it replaced, on the same trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def equal_quality_runs(
    rng: np.random.Generator,
    gold: np.ndarray,
    labels: Sequence[str],
    n_runs: int,
    accuracy: float = 0.6,
    seed_sd: float = 0.03,
) -> list[list[str]]:
    """``n_runs`` runs of one method on ``gold`` (label strings): a per-run accuracy, errors spread evenly."""
    names = np.asarray(labels)
    position = {label: i for i, label in enumerate(labels)}
    index = np.asarray([position[g] for g in gold])
    out = []
    for _ in range(n_runs):
        right = rng.random(len(gold)) < rng.normal(accuracy, seed_sd)
        wrong = (index + rng.integers(1, len(labels), len(gold))) % len(labels)
        out.append(names[np.where(right, index, wrong)].tolist())
    return out


@dataclass
class NullTrial:
    """One trial: both methods' scores on shared item resamples and their per-run macro-F1."""

    resampled: dict[str, np.ndarray]  # method → (runs, n_boot)
    f1: dict[str, list[float]]  # method → per-run macro-F1 on the whole test set


def null_trial(
    rng: np.random.Generator,
    labels: Sequence[str],
    items: int,
    seeds: int,
    seed_sd: float,
    n_boot: int,
    boot_seed: int,
) -> NullTrial:
    """Draw one test set of ``items`` items and two equal methods ``a`` and ``b`` of ``seeds`` runs each."""
    from cmmerge.eval.metrics import classification_metrics
    from cmmerge.eval.stats import resampled_seed_scores

    gold = np.asarray(labels)[rng.integers(0, len(labels), items)]
    runs = {m: equal_quality_runs(rng, gold, labels, seeds, seed_sd=seed_sd) for m in ("a", "b")}
    gold_list = gold.tolist()
    resampled = resampled_seed_scores(gold_list, runs, labels, n_boot, seed=boot_seed)
    f1 = {m: [classification_metrics(gold_list, run, labels)["macro_f1"] for run in rs] for m, rs in runs.items()}
    return NullTrial(resampled, f1)
