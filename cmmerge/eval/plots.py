"""Plot data files that ``dvc plots show`` / ``dvc plots diff`` render, and PNG copies for the README.

DVC reads a plot's data from a JSON file holding a list of flat records (one object per point or
cell); the dvc.yaml ``plots`` entry names the template and which fields are x and y. This module
writes those files:

- ``metrics/sweep.json``: one record per λ with ``lambda``, ``dev_macro_f1``, ``test_macro_f1``
  (``linear`` template, x ``lambda``, y both F1 columns);
- ``metrics/transfer.json``: one record per (method or train pair, test pair) cell with ``macro_f1``
  (the ``heatmap`` template shipped in ``.dvc/plots/heatmap.json``: DVC's own ``confusion`` template
  counts records instead of showing a value);
- confusion records ``{actual, predicted}`` per test item (DVC's ``confusion`` template), written by evaluate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cmmerge.errors import DataError
from cmmerge.fsutil import read_json, write_json

SWEEP_FIELDS = ("lambda", "dev_macro_f1", "test_macro_f1")
TRANSFER_FIELDS = ("train", "test", "macro_f1")


def write_sweep(rows: Sequence[Mapping], path: str | Path) -> list[dict]:
    """Write λ-sweep records sorted by λ; each row needs ``lambda``, ``dev_macro_f1`` and ``test_macro_f1``."""
    out = []
    for row in rows:
        missing = [f for f in SWEEP_FIELDS if f not in row]
        if missing:
            raise DataError(f"sweep row {dict(row)} lacks {missing}")
        # extra scalar fields (per-seed scores, std) stay: DVC ignores fields that no axis names. Nested
        # values do not: DVC's plot collection fails on a record holding a dict or list, so they are refused.
        nested = [k for k, v in row.items() if not isinstance(v, (int, float, str, bool, type(None)))]
        if nested:
            raise DataError(f"sweep row fields {nested} are not scalars; DVC plot records must be flat")
        extra = {k: v for k, v in row.items() if k not in SWEEP_FIELDS}
        out.append({**{f: float(row[f]) for f in SWEEP_FIELDS}, **extra})
    # DVC's plot collection also fails when records differ in their fields (seen with dvc 3.67)
    if len({tuple(sorted(r)) for r in out}) > 1:
        raise DataError("sweep rows differ in their fields; DVC plot records must all have the same fields")
    out.sort(key=lambda r: r["lambda"])
    write_json(path, out)
    return out


def transfer_rows(eval_dir: str | Path, methods: Sequence[str] | None = None, in_pair: str = "task") -> list[dict]:
    """Transfer-matrix cells from ``metrics/eval/<method>.json`` files (the evaluate stage's contract).

    Each file holds the in-pair test scores at the top level and one object per transfer pair under
    ``transfer``; ``in_pair`` names the in-pair test set's column (e.g. ``en_hi``). The ``train`` field
    is the method, or ``<method>@<train pair>`` when the file says which pair the method trained on.
    """
    eval_dir = Path(eval_dir)
    paths = [eval_dir / f"{m}.json" for m in methods] if methods is not None else sorted(eval_dir.glob("*.json"))
    if not paths:
        raise DataError(f"{eval_dir}: no metrics/eval/<method>.json files (run the evaluate stages first)")
    rows = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: not found (run evaluate@{path.stem})")
        data = read_json(path)
        if "macro_f1" not in data:
            raise DataError(f"{path}: no 'macro_f1' (not an evaluate output)")
        method = data.get("method", path.stem)
        train = f"{method}@{data['train_pair']}" if data.get("train_pair") else method
        rows.append({"train": train, "test": data.get("train_pair") or in_pair, "macro_f1": float(data["macro_f1"])})
        for pair, scores in sorted(data.get("transfer", {}).items()):
            rows.append({"train": train, "test": pair, "macro_f1": float(scores["macro_f1"])})
    return rows


def write_transfer(
    eval_dir: str | Path, path: str | Path, methods: Sequence[str] | None = None, in_pair: str = "task"
) -> list[dict]:
    """Write ``metrics/transfer.json`` (train × test macro-F1 cells) and return its rows."""
    rows = transfer_rows(eval_dir, methods, in_pair)
    write_json(path, rows)
    return rows


def confusion_records(gold: Sequence[str], pred: Sequence[str]) -> list[dict]:
    """One ``{actual, predicted}`` record per item, the input of DVC's ``confusion`` template."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    return [{"actual": g, "predicted": p} for g, p in zip(gold, pred, strict=True)]


def save_png_sweep(rows: Sequence[Mapping], path: str | Path) -> None:
    """A PNG of the λ sweep (dev and test macro-F1 against λ), for the README."""
    import matplotlib

    matplotlib.use("Agg")  # no display on build machines
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["lambda"])
    lam = [r["lambda"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    ax.plot(lam, [r["dev_macro_f1"] for r in rows], marker="o", label="dev")
    ax.plot(lam, [r["test_macro_f1"] for r in rows], marker="s", label="test")
    ax.set_xlabel("λ (θ_base + λ·τ_cpt)")
    ax.set_ylabel("macro-F1")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def save_png_matrix(
    rows: Sequence[Mapping],
    path: str | Path,
    x: str = "test",
    y: str = "train",
    value: str = "macro_f1",
    title: str = "macro-F1: train × test",
) -> None:
    """A PNG heatmap of ``value`` over (``y``, ``x``) cells (the transfer matrix), for the README."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    xs = list(dict.fromkeys(r[x] for r in rows))
    ys = list(dict.fromkeys(r[y] for r in rows))
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        grid[ys.index(r[y]), xs.index(r[x])] = r[value]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(xs), 1.2 + 0.5 * len(ys)), dpi=100)
    im = ax.imshow(grid, cmap="viridis", vmin=np.nanmin(grid), vmax=np.nanmax(grid), aspect="auto")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", color="w", fontsize=8)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def save_png_confusion(
    labels: Sequence[str], matrix: Sequence[Sequence[int]], path: str | Path, title: str = "confusion"
) -> None:
    """A PNG confusion matrix (rows: gold, columns: predicted)."""
    rows = [
        {"actual": a, "predicted": p, "count": float(matrix[i][j])}
        for i, a in enumerate(labels)
        for j, p in enumerate(labels)
    ]
    save_png_matrix(rows, path, x="predicted", y="actual", value="count", title=title)
