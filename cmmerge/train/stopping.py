"""CPT's early-stopping rule, written once: training sets ``stopped_early`` by it (:mod:`cmmerge.train.cpt`) and a
record's ``:cpt`` caption reads it from the stored curve (:func:`cmmerge.records.cpt_table`).

The rule is transformers' ``EarlyStoppingCallback`` with no threshold: an evaluation improves only on a strictly
lower loss, and training stops once ``patience`` evaluations in a row have not.
"""

from __future__ import annotations

from collections.abc import Sequence


def best_evaluation(losses: Sequence[float]) -> int:
    """Index of the kept evaluation: the first one with the lowest loss."""
    return min(range(len(losses)), key=lambda i: losses[i])


def evaluations_since_best(losses: Sequence[float]) -> int:
    """How many evaluations came after the kept one without improving on it."""
    return len(losses) - 1 - best_evaluation(losses)


def stopped_by_patience(losses: Sequence[float], patience: int) -> bool:
    """Whether the rule ended the run: its last ``patience`` evaluations did not improve on the best. A run ended
    by its epoch or step budget did not stop early, even when that left it short of ``optim.epochs``."""
    return patience > 0 and evaluations_since_best(losses) >= patience
