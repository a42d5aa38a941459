"""Classification metrics over label strings, computed with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence


def classification_metrics(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Macro-F1, weighted-F1, accuracy, n, per-class precision/recall/F1/support and the confusion matrix.

    ``labels`` fixes the class order (and includes classes absent from ``gold``, which then count
    with F1 = 0 in the macro average only if they were predicted: scikit-learn's ``zero_division=0``).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    labels = list(labels)
    present = [lab for lab in labels if lab in set(gold) or lab in set(pred)]
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(gold, pred, labels=present, average="weighted", zero_division=0)),
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
        "confusion": {"labels": labels, "matrix": confusion_matrix(gold, pred, labels=labels).tolist()},
    }
