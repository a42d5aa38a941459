"""Experiment records: a finished run, frozen under ``results/<name>/`` and committed to git.

A record is what a reviewer needs to trust and regenerate a results table without rerunning it:

- ``params.yaml`` (the composed params of the run) and ``dvc.lock`` (every stage's inputs, code and
  outputs by hash, so ``dvc repro`` at ``git_commit`` with these params rebuilds the same run);
- ``metrics/``: the run's metrics folder (per-method, per-seed scores in ``metrics/eval``, the report's
  ``summary.json`` and ``report.md``, data counts, training curves), PNG copies left out;
- only what the pipeline of this params.yaml writes: DVC keeps a ``dvc.lock`` entry of a stage that
  ``dvc.yaml`` no longer defines (a transfer pair of the committed default that a real config clears), and a
  workspace holds the default's committed metrics files; neither belongs to the run, so both are left out
  (``record.json``'s ``left_out`` names them);
- ``predictions/``: per-item predictions of every seed of every method, compact: the items once
  (``items.json``: ids and gold labels per test set), then per method a string of label indices per seed;
- ``timings.json``: how long each stage took when it ran with these params (written by the stage runner,
  :func:`cmmerge.runner.write_stage_timing`), where it was measured;
- ``record.json``: name, git commit (and whether the tree was dirty), the experiment config, software
  versions, the hashes of the input data (from dvc.lock: every dep that no stage produces and that is not
  code), and the sha256 of every file above, which :func:`load_record` checks.

README's results tables are generated from records by :func:`render_readme` (``cmmerge results readme``);
a test regenerates them and fails on any difference. A block names a record and optionally a part of it:
``<!-- results:NAME -->`` the methods table, ``<!-- results:NAME:adamergex -->`` the AdaMergeX table,
``<!-- results:NAME:curve -->`` the learning curve (a table and ``docs/figures/NAME_curve.svg``, drawn
from the record too), ``<!-- results:NAME:claims -->`` the seed papers' claims tested on the record
(:mod:`cmmerge.claims`), ``<!-- results:NAME:cpt -->`` the CPT run's validation loss per evaluation (a
table and ``docs/figures/NAME_cpt.svg``), ``<!-- results:NAME:timings -->`` the run time per stage family.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import re
import subprocess
from pathlib import Path

from cmmerge import yaml12
from cmmerge.checksums import sha256_file
from cmmerge.errors import DataError
from cmmerge.eval.compact import decode, encode
from cmmerge.fsutil import atomic_dir, atomic_file, read_json, write_json
from cmmerge.train.stopping import best_evaluation, evaluations_since_best, stopped_by_patience

log = logging.getLogger(__name__)

RESULTS = Path("results")
MAX_FILE_BYTES = 5 * 1024 * 1024  # git hosting limit agreed for this project
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CODE_PREFIXES = ("cmmerge/", "stages/", "configs/", "params.yaml", "dvc.yaml")
# README blocks: <!-- results:NAME[:PART] --> ... <!-- /results:NAME[:PART] -->, regenerated from results/NAME
_BLOCK = re.compile(
    r"(<!-- results:(?P<name>[A-Za-z0-9_.+-]+)(?::(?P<part>[a-z]+))? -->\n)(?P<body>.*?)"
    r"(<!-- /results:(?P=name)(?::(?P=part))? -->)",
    re.S,
)
PARTS = ("methods", "adamergex", "curve", "claims", "cpt", "timings")
FIGURES = Path("docs/figures")


def _git(repo: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "transformers", "peft", "dvc", "numpy", "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def _inputs(lock: dict) -> dict[str, dict]:
    """Data the run read that no stage produced, with the hashes DVC recorded for them. A dep that is a stage's
    output, lies inside one, or is a folder of outputs (``metrics/eval``, which the report reads whole and each
    ``evaluate@`` stage writes one file of) is not an input."""
    produced = {o["path"] for s in lock.get("stages", {}).values() for o in s.get("outs", [])}
    inputs: dict[str, dict] = {}
    for stage in lock.get("stages", {}).values():
        for dep in stage.get("deps", []):
            path = dep["path"]
            if _within(path, produced) or any(_within(p, [path]) for p in produced):
                continue
            if path.startswith(_CODE_PREFIXES) or path.endswith(".py"):
                continue
            inputs[path] = {k: dep[k] for k in ("md5", "size", "nfiles") if k in dep}
    return dict(sorted(inputs.items()))


def _compact_predictions(predictions_dir: Path) -> tuple[dict, dict[str, dict]]:
    """Items once (ids and gold per test set), and per method one string of label indices per seed."""
    items: dict = {}
    methods: dict[str, dict] = {}
    for path in sorted(predictions_dir.glob("*.json")):
        data = read_json(path)
        labels = data["labels"]
        out = {"labels": labels, "sets": {}}
        for name, block in data["sets"].items():
            seen = items.setdefault(name, {"ids": block["ids"], "gold": block["gold"]})
            if seen["ids"] != block["ids"] or seen["gold"] != block["gold"]:
                raise DataError(f"{path}: test set '{name}' holds other items than the other methods' predictions")
            out["sets"][name] = {seed: encode(preds, labels, str(path)) for seed, preds in block["pred"].items()}
        methods[path.stem] = out
    if not methods:
        raise DataError(f"{predictions_dir}: no predictions (run the evaluate stages first)")
    return items, methods


def expand_predictions(record_dir: str | Path, method: str) -> dict:
    """A method's predictions in the evaluate stage's format, from a record's compact files."""
    record_dir = Path(record_dir)
    items = read_json(record_dir / "predictions" / "items.json")
    data = read_json(record_dir / "predictions" / f"{method}.json")
    labels = data["labels"]
    return {
        "labels": labels,
        "sets": {
            name: {
                **items[name],
                "pred": {seed: decode(codes, labels) for seed, codes in seeds.items()},
            }
            for name, seeds in data["sets"].items()
        },
    }


def _timings(repo: Path, lock: dict) -> dict:
    """The run time of every stage in ``lock`` that the stage runner measured with this params.yaml.

    A stage DVC restored from its run cache did not run again; its time is that of the run that produced
    its outputs with the same params. A timing matches by the stage's own params (what DVC keys the stage
    by, :meth:`cmmerge.runner.PipelineParams.sha256`), or, for one written before timings named them, by the
    whole params.yaml. Stages without a matching timing are listed as unmeasured, never guessed.
    """
    from cmmerge.runner import TIMINGS, PipelineParams

    digest = sha256_file(repo / "params.yaml")
    pipeline = PipelineParams(repo)  # dvc.yaml and params.yaml read once for all stages
    stages, unmeasured, cpus = {}, [], set()
    for stage in lock.get("stages", {}):
        path = repo / TIMINGS / f"{stage}.json"
        entry = read_json(path) if path.is_file() else None
        # a timing written before timings named the stage's own params matches by the whole params.yaml
        own = bool(entry) and "stage_params_sha256" in entry
        key, want = ("stage_params_sha256", pipeline.sha256(stage)) if own else ("params_sha256", digest)
        if not entry or entry.get(key) != want:
            unmeasured.append(stage)
            continue
        stages[stage] = {
            k: entry.get(k, 0)
            for k in ("seconds", "cpu_seconds", "reused_seconds", "reused_untimed", "interrupted_attempts", "finished")
        }
        cpus.add(entry.get("cpus"))
    return {"stages": stages, "unmeasured": unmeasured, "cpus": sorted(c for c in cpus if c)}


def _within(path: str, roots) -> bool:
    """Whether ``path`` (relative to the repository, POSIX) is one of ``roots`` or lies inside one."""
    return any(path == root or path.startswith(f"{root}/") for root in roots)


def _pipeline(repo: Path, check_workspace: bool) -> tuple[set[str], list[str]]:
    """The stages ``dvc.yaml`` defines with this params.yaml (``foreach`` expanded, named as DVC names them) and
    the paths their outputs, metrics and plots are written to, as DVC itself reads the pipeline. With
    ``check_workspace``, the workspace must also be what dvc.lock says (a record of a half-updated run would
    lie); both come from one DVC index."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(repo), uninitialized=not check_workspace) as r:
            stages = list(r.index.stages)
            changed = sorted(r.status()) if check_workspace else []
    except DvcException as exc:
        raise DataError(f"{repo / 'dvc.yaml'}: DVC cannot read the pipeline ({exc}); fix it before recording") from exc
    if changed:
        raise DataError(
            f"{repo}: the workspace differs from dvc.lock in {', '.join(changed)}; run `dvc repro` before recording"
        )
    return {s.name for s in stages}, [Path(o.def_path).as_posix().rstrip("/") for s in stages for o in s.outs]


def record_run(
    name: str,
    repo: str | Path = ".",
    config: str | None = None,
    check_workspace: bool = True,
    results_dir: str | Path | None = None,
) -> Path:
    """Freeze the current run of ``repo`` as ``results/<name>/`` (replacing an earlier record of that name)."""
    if not _NAME.fullmatch(name):
        raise DataError(f"record name '{name}': use letters, digits, '.', '_' and '-' (e.g. sentimix_hinglish)")
    repo = Path(repo)
    for need in ("params.yaml", "dvc.lock", "metrics/summary.json", "results/predictions"):
        if not (repo / need).exists():
            raise DataError(f"{repo / need}: missing; run `dvc repro` to completion before recording")
    stages, outs = _pipeline(repo, check_workspace)
    target = Path(results_dir) if results_dir is not None else repo / RESULTS
    target = target / name
    lock = yaml12.load((repo / "dvc.lock").read_text(encoding="utf-8"))
    # what the workspace holds that this pipeline did not write (see the module docstring) stays out
    locked = lock.get("stages") or {}
    stale = sorted(set(locked) - stages)
    lock["stages"] = {k: v for k, v in locked.items() if k in stages}
    metrics = {
        p.relative_to(repo).as_posix(): p
        for p in sorted((repo / "metrics").rglob("*"))
        if p.is_file() and p.suffix != ".png"
    }
    foreign = [rel for rel in metrics if not _within(rel, outs)]
    if stale or foreign:
        log.info("left out of the record, not written by this pipeline: %s", ", ".join([*stale, *foreign]))
    items, methods = _compact_predictions(repo / "results" / "predictions")
    with atomic_dir(target) as tmp:
        (tmp / "params.yaml").write_bytes((repo / "params.yaml").read_bytes())
        if stale:
            from dvc.utils.serialize import dumps_yaml

            (tmp / "dvc.lock").write_text(dumps_yaml(lock), encoding="utf-8")
        else:
            (tmp / "dvc.lock").write_bytes((repo / "dvc.lock").read_bytes())
        for rel, path in metrics.items():
            if _within(rel, outs):
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(path.read_bytes())
        write_json(tmp / "timings.json", _timings(repo, lock))
        write_json(tmp / "predictions" / "items.json", items)
        for method, data in methods.items():
            write_json(tmp / "predictions" / f"{method}.json", data)
        files = {}
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            rel = path.relative_to(tmp).as_posix()
            if path.stat().st_size > MAX_FILE_BYTES:
                raise DataError(f"{rel}: {path.stat().st_size / 2**20:.1f} MB, over the 5 MB a record file may have")
            files[rel] = sha256_file(path)
        commit = _git(repo, "rev-parse", "HEAD")
        write_json(
            tmp / "record.json",
            {
                "name": name,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "git_commit": commit,
                "git_dirty": bool(_git(repo, "status", "--porcelain", "--untracked-files=no")) if commit else None,
                "config": config,
                "software": _versions(),
                "inputs": _inputs(lock),
                "methods": sorted(methods),
                "left_out": {"dvc_lock_stages": stale, "files": foreign},
                "files": files,
            },
        )
    return target


def load_record(name: str, results_dir: str | Path = RESULTS) -> dict:
    """``record.json`` of ``results/<name>``, after checking that every listed file is there, unchanged."""
    root = Path(results_dir) / name
    meta_path = root / "record.json"
    if not meta_path.is_file():
        known = sorted(p.parent.name for p in Path(results_dir).glob("*/record.json"))
        raise DataError(f"{meta_path}: no such record (records: {', '.join(known) or 'none'})")
    meta = read_json(meta_path)
    for rel, digest in meta.get("files", {}).items():
        path = root / rel
        if not path.is_file():
            raise DataError(f"{path}: listed in {meta_path} but missing; restore it from git (git checkout -- {path})")
        if sha256_file(path) != digest:
            raise DataError(f"{path}: sha256 differs from {meta_path} ('files.{rel}'); the record was edited by hand")
    return meta


def _seeds(seeds: list) -> str:
    """ "Seed 1 varies" / "Seeds 1, 2, 3 vary": the subject of a caption's sentence on what the seeds change."""
    return f"Seed {seeds[0]} varies" if len(seeds) == 1 else f"Seeds {', '.join(map(str, seeds))} vary"


def shared_randomness(params: dict) -> str:
    """What every seed of a run shares: the caption under its table (the seeds vary fine-tuning only)."""
    methods = params.get("methods", {})
    inits = {m.get("init", "") for m in methods.values()}
    seeds = params.get("finetune", {}).get("seeds", [])
    parts = [f"the data subsample (prepare.seed {params.get('prepare', {}).get('seed')})"]
    if any("cpt" in i or "merged" in i for i in inits):
        parts.append(f"one CPT run (cpt.seed {params.get('cpt', {}).get('seed')})")
    if any("finetune_en" in i or "merged/ties" in i or "merged/swap" in i for i in inits):
        parts.append("one English task model θ_en (finetune_en)")
    return (
        f"{_seeds(seeds)} fine-tuning only (initialisation of the new head, data order, "
        f"dropout); every seed shares {', '.join(parts)}, so the intervals and tests do not cover their variance."
    )


def _claims_settings(params: dict) -> tuple[int, int, float, str | None]:
    """``n_boot``, bootstrap seed, ``alpha`` and model name a record's claims are tested with (its params)."""
    report = params.get("report", {})
    return (
        report.get("n_boot", 10_000),
        report.get("seed", 0),
        report.get("alpha", 0.05),
        params.get("model", {}).get("name"),
    )


def claims_across(names: list[str], results_dir: str | Path = RESULTS) -> str:
    """The seed papers' claims side by side across the records ``names`` (:func:`cmmerge.claims.claims_overview`)."""
    from cmmerge.claims import CLAIMS, claims_overview, evaluate_claims, load_claims

    if len(set(names)) != len(names):
        raise DataError(f"records '{'+'.join(names)}': a record is named twice")
    claims = load_claims(CLAIMS)
    evaluated, boots = {}, set()
    for name in names:
        load_record(name, results_dir)
        root = Path(results_dir) / name
        n_boot, seed, alpha, model = _claims_settings(yaml12.load((root / "params.yaml").read_text(encoding="utf-8")))
        rows = evaluate_claims(root, claims, n_boot, seed)
        evaluated[name] = {"rows": rows, "alpha": alpha, "model": model, "dir": root}
        boots.add(n_boot)
    if len(boots) > 1:
        raise DataError(f"records '{'+'.join(names)}' resample {sorted(boots)} times: set one report.n_boot")
    return claims_overview(evaluated, boots.pop())


def record_table(name: str, results_dir: str | Path = RESULTS, part: str = "methods") -> str:
    """A Markdown part of a record: the methods table (with the caption on shared randomness), the
    AdaMergeX table, or the learning curve's table (with a link to its figure). ``A+B`` names several records:
    their claims side by side (``part`` ``claims`` only)."""
    from cmmerge.eval.report import markdown_table

    if part not in PARTS:
        raise DataError(f"record part '{part}': expected one of {', '.join(PARTS)}")
    if "+" in name:
        if part != "claims":
            raise DataError(
                f"'{name}': several records side by side exist only for the claims part (`{name}:claims`), not {part}"
            )
        return claims_across(name.split("+"), results_dir)
    load_record(name, results_dir)
    root = Path(results_dir) / name
    params = yaml12.load((root / "params.yaml").read_text(encoding="utf-8"))
    alpha = params.get("report", {}).get("alpha", 0.05)
    if part == "methods":
        summary = retested_summary(root, root / "metrics" / "summary.json", root / "metrics" / "eval", params)
        return markdown_table(summary, alpha, caption=shared_randomness(params))
    if part == "cpt":
        return cpt_table(root, FIGURES / f"{name}_cpt.svg")
    if part == "timings":
        return timings_table(root)
    if part == "claims":
        from cmmerge.claims import CLAIMS, claims_table, load_claims

        n_boot, seed, alpha, model = _claims_settings(params)
        return claims_table(root, load_claims(CLAIMS), n_boot, seed, alpha, model)
    path = root / "metrics" / ("adamergex/summary.json" if part == "adamergex" else "curve_summary.json")
    if not path.is_file():
        raise DataError(f"{path}: record '{name}' has no {part} results (was its {part} stage in the run?)")
    if part == "adamergex":
        summary = retested_summary(root, path, root / "metrics" / "adamergex" / "eval", params)
        table = markdown_table(summary, alpha, caption=_adamergex_caption(root, params))
        # the recipe on a line of its own: it is a setting of the run, not a result of the table
        recipe = _task_recipe(root, params.get("adamergex", {})).strip()
        return f"{table.rstrip()}\n\n{recipe}\n" if recipe else table
    summary = read_json(path)
    if "predictions" in summary:  # tested again by this code, as the methods table is
        from cmmerge.eval.curve import compare_with_reference

        curve = params.get("curve", {})
        compare_with_reference(summary, curve.get("n_boot", summary["n_boot"]), curve.get("boot_seed", 0))
    return curve_table(summary, alpha, FIGURES / f"{name}_curve.svg")


def retested_summary(root: Path, summary_path: Path, eval_dir: Path, params: dict) -> dict:
    """A record's summary with its tests computed again by this code from the record's per-seed scores and
    per-item predictions (:func:`cmmerge.eval.report.summarize`), so every record is rendered with the same,
    current test, whatever code made the run; the chance baselines are the record's own."""
    from cmmerge.eval.report import ReportParams, summarize

    recorded = read_json(summary_path)
    methods = recorded.get("method_order", sorted(recorded["methods"]))
    for m in methods:
        for path in (eval_dir / f"{m}.json", root / "predictions" / f"{m}.json"):
            if not path.is_file():
                raise DataError(f"{path}: record '{root.name}' lacks the scores or predictions of method '{m}'")
    runs = {m: (read_json(eval_dir / f"{m}.json"), expand_predictions(root, m)) for m in methods}
    report = params.get("report", {})
    # the recorded params may name an older test: the test is this code's, the rest is the record's
    settings = {k: report[k] for k in ("n_boot", "alpha", "seed", "in_pair") if k in report}
    ref = recorded.get("reference") or report.get("reference", "full_ft")

    def baselines(name: str, gold: list[str]) -> dict[str, dict]:
        return {b: entry[name] for b, entry in recorded["baselines"].items()}

    return summarize(runs, ReportParams(reference=ref, **settings), baselines, eval_dir)


def timings_table(root: Path) -> str:
    """Run time of a record's stages, per stage family (``finetune@a`` and ``finetune@b`` are one row)."""
    path = root / "timings.json"
    timings = read_json(path) if path.is_file() else {"stages": {}, "unmeasured": []}
    if not timings["stages"]:
        raise DataError(
            f"{path}: record '{root.name}' holds no stage timings (its run predates them, or ran with other params)"
        )
    families: dict[str, list[float]] = {}
    for stage, entry in timings["stages"].items():
        families.setdefault(stage.split("@")[0], []).append(entry["seconds"] + entry.get("reused_seconds", 0))
    untimed = [s for s, e in timings["stages"].items() if e.get("reused_untimed")]
    lines = ["| stage | runs | wall time (min) |", "|---|---|---|"]
    ordered = sorted(families.items(), key=lambda kv: -sum(kv[1]))
    lines += [f"| `{family}` | {len(v)} | {sum(v) / 60:.1f} |" for family, v in ordered]
    total = sum(sum(v) for v in families.values())
    lines.append(f"| all | {sum(map(len, families.values()))} | {total / 60:.1f} |")
    cpus = ", ".join(map(str, timings.get("cpus", []))) or "?"
    missing = timings["unmeasured"]
    note = f" Not measured: {', '.join(f'`{s}`' for s in missing)}." if missing else ""
    if untimed:
        note += f" Without the time of grid cells kept by an older run: {', '.join(f'`{s}`' for s in untimed)}."
    killed = {s: e["interrupted_attempts"] for s, e in timings["stages"].items() if e.get("interrupted_attempts")}
    if killed:
        note += (
            " With the time of attempts killed before the run that finished (a resumable stage continued from their "
            "checkpoints; one that started over makes its time an overstatement): "
            + ", ".join(f"`{s}` ({n})" for s, n in killed.items())
            + "."
        )
    return (
        "\n".join(lines) + f"\n\nWall time of each stage when it ran with this record's params, on {cpus} CPU cores, "
        f"measured by the stage runner while the stage's process was running (time it stood stopped does not "
        f"count); a stage DVC restored from its run cache counts with the time of the run "
        f"that produced it, and a grid stage (recipe, sweep, curve) with the time of the cells it kept from earlier "
        f"runs. Other work on the machine at the time slows a stage down; the sum is the stages' "
        f"share of one uninterrupted `dvc repro` (DVC's own hashing and bookkeeping between stages come on top), not "
        f"the calendar time of the run.{note}\n"
    )


def _adamergex_caption(root: Path, params: dict) -> str:
    p = params.get("adamergex", {})
    ref = p.get("reference", {})
    lam = root / "metrics" / "adamergex" / "lambda_dev.json"
    chosen = (
        f"λ = {read_json(lam)['chosen']:g}, chosen on code-mixed dev among {', '.join(map(str, p.get('lambdas')))}"
        if lam.is_file() and p.get("lambdas")
        else f"λ = {p.get('merge', {}).get('lambda')}"
    )
    return (
        f"LoRA (r = {p.get('lora', {}).get('r')}) adapters on θ_base. `lora_en`: fine-tuned on the English task data, "
        f"applied as is; `lora_adamergex`: that adapter + λ·(reference_cm − reference_en), {chosen}; `lora_cm`: "
        f"fine-tuned on the code-mixed task data. {_seeds(p.get('seeds', []))} the task "
        f"adapters only; all share the two reference adapters (LoRA MLM on equal numbers of English and code-mixed "
        f"lines, seed {ref.get('seed')}; a random MLM head trained first for {ref.get('head_steps', 0)} steps)."
    )


def _task_recipe(root: Path, p: dict) -> str:
    """The sentence on the task adapters' recipe (the line under the AdaMergeX table, trailing space included):
    chosen on dev (the stage's recipe record), or as params gave it (a record made before the stage wrote one has
    only its params); empty when neither says."""
    path = root / "metrics" / "adamergex" / "recipe.json"
    record = read_json(path) if path.is_file() else {}
    chosen = record.get("chosen") or p.get("optim", {})
    if not all(isinstance(chosen.get(k), int | float) for k in ("learning_rate", "epochs")):
        return ""  # neither a recipe record nor numbers in params: nothing to say
    recipe = f"learning rate {chosen['learning_rate']:g}, {chosen['epochs']:g} epochs"
    grid = p.get("recipe") or {}
    if record.get("grid_cells"):
        return (
            f"Both task adapters use one recipe, {recipe}, chosen for `lora_cm` by its code-mixed dev macro-F1 "
            f"(mean of seeds {', '.join(map(str, grid.get('seeds', [])))}) among learning rates "
            f"{', '.join(f'{v:g}' for v in grid.get('learning_rates', []))} × epochs "
            f"{', '.join(f'{v:g}' for v in grid.get('epochs', []))}. "
        )
    return f"Both task adapters use the recipe set in params, {recipe} (not chosen on dev). "


def curve_table(summary: dict, alpha: float, figure: str | Path) -> str:
    """The learning curve as Markdown: macro-F1 per size and method, each method's difference to the reference
    with its Holm-adjusted p-value (the test the run's code made), and a link to the figure."""
    from cmmerge.eval.report import NO_SPREAD, same_model_cell, same_model_note, welch_phrase

    methods, ref = summary["methods"], summary["reference"]
    sizes = sorted(summary["sizes"].values(), key=lambda s: s["rows"])
    head = "| task training rows | " + " | ".join(f"`{m}`" for m in methods) + " |"
    lines = [head, "|" + "---|" * (len(methods) + 1)]
    for entry in sizes:
        cells = []
        for m in methods:
            e = entry["methods"][m]
            cell = f"{100 * e['mean']:.1f} ± {100 * e['std']:.1f}"
            if m != ref:
                v = entry["vs_reference"][m]
                if v.get("identical"):
                    cell += same_model_cell(ref)
                else:
                    star = "*" if v["p_holm"] < alpha else ""
                    cell += f" ({100 * v['delta_macro_f1']:+.1f}{star}, p={v['p_holm']:.3f})"
            cells.append(cell)
        lines.append(f"| {entry['rows']} | " + " | ".join(cells) + " |")
    return (
        "\n".join(lines)
        + f"\n\nTest macro-F1 × 100 on all {summary['test_items']} test items, "
        + (
            f"seed {summary['seeds'][0]} {NO_SPREAD}"
            if len(summary["seeds"]) == 1
            else f"mean ± std over seeds {', '.join(map(str, summary['seeds']))}"
        )
        + f". In parentheses: difference to `{ref}` at the same size and its p-value, "
        + (
            f"from {welch_phrase(summary['n_boot'])}, Holm-corrected over the {summary['n_comparisons']} comparisons "
            f"of this table; * marks p < {alpha}."
            if summary.get("test") == "seed_item_welch"
            else f"from the run's own test, a two-level bootstrap ({summary['n_boot']:,} resamples of seeds and items) "
            f"Holm-corrected over the {summary['n_comparisons']} comparisons the run counted; * marks p < {alpha}. "
            "That bootstrap resamples three seeds, which understates their variance: it rejects a true null more "
            "often than the nominal rate (`python benchmarks/calibration.py`), so these p-values are optimistic. The "
            "record keeps no per-item predictions of the curve (its run predates them), so they cannot be tested again."
        )
        + (
            f" {same_model_note(ref)}"
            if any(v.get("identical") for e in sizes for v in e.get("vs_reference", {}).values())
            else ""
        )
        + "\n\n"
        f"![learning curve]({Path(figure).as_posix()})\n"
    )


CPT_CURVE = Path("metrics/train/cpt/plots/metrics")  # DVCLive's folders inside a run's metrics


def _tsv(path: Path) -> list[tuple[float, float]]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(float(a), float(b)) for a, b in (line.split("\t")[:2] for line in lines if line.strip())]


def cpt_table(root: Path, figure: str | Path) -> str:
    """The CPT run of a record: validation loss after each evaluation (epoch), where it was best, and whether
    training stopped early; the figure shows it with the training loss."""
    curve = root / CPT_CURVE / "eval" / "loss.tsv"
    if not curve.is_file():
        raise DataError(f"{curve}: the record's CPT run has no validation curve (corpus.valid_fraction was 0?)")
    summary = read_json(root / "metrics" / "cpt.json")
    valid = _tsv(curve)
    losses = [loss for _, loss in valid]
    best = best_evaluation(losses)
    lines = ["| evaluation | optimiser step | validation loss |", "|---|---|---|"]
    lines += [f"| {i + 1}{' (kept)' if i == best else ''} | {int(s)} | {v:.3f} |" for i, (s, v) in enumerate(valid)]
    params = yaml12.load((root / "params.yaml").read_text(encoding="utf-8"))
    patience = params.get("cpt", {}).get("early_stopping_patience", 0)
    # read from the curve, not the summary's flag: a run that hit max_steps was once marked as stopped early
    if stopped_by_patience(losses, patience):
        how = (
            f"stopped by its validation loss after {len(valid)} evaluations, the last "
            f"{evaluations_since_best(losses)} without improvement"
        )
    else:
        optim = params.get("cpt", {}).get("optim", {})
        budget = ", ".join(f"{k} {optim[k]}" for k in ("epochs", "max_steps") if optim.get(k))
        window = min(5, len(valid) - 1)  # the trend at the end: was it still falling?
        how = f"ran all {len(valid)} evaluations of its budget" + (f" (cpt.optim: {budget})" if budget else "")
        if patience:
            how += f" without {patience} in a row failing to improve, so the budget, not convergence, ended it"
        if window:
            change = valid[-1][1] - valid[-1 - window][1]
            how += (
                f"; the validation loss {'fell' if change < 0 else 'rose'} by {abs(change):.3f} over its last "
                f"{window} evaluations"
            )
    return (
        "\n".join(lines)
        + f"\n\nCPT (MLM) on {summary.get('train_tokens')} tokens in {summary.get('train_blocks')} blocks: "
        f"{how}; the weights after evaluation {best + 1} (validation loss {valid[best][1]:.3f}) are θ_cpt.\n\n"
        f"![CPT loss]({Path(figure).as_posix()})\n"
    )


def save_cpt_figure(root: Path, path: Path) -> None:
    """Training and validation loss of a record's CPT run against the optimiser step (deterministic SVG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"svg.hashsalt": "cmmerge", "svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
        for name, style, label in (("train", "-", "training"), ("eval", "o-", "validation")):
            points = _tsv(root / CPT_CURVE / name / "loss.tsv")
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("MLM loss")
        ax.set_title("continued pre-training")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={"Date": None})
        plt.close(fig)


def render_readme(
    readme: str | Path = "README.md", results_dir: str | Path = RESULTS, check: bool = False
) -> list[str]:
    """Regenerate every ``<!-- results:NAME[:PART] -->`` block of ``readme`` (and the curve figures next to it);
    return the names of blocks (or figures) that changed.

    With ``check``, nothing is written: the caller reports the stale blocks.
    """
    import tempfile

    from cmmerge.eval.curve import save_curve_figure

    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    changed: list[str] = []

    def fill(match: re.Match) -> str:
        part = match["part"] or "methods"
        label = match["name"] + (f":{part}" if match["part"] else "")
        body = record_table(match["name"], results_dir, part)
        root = Path(results_dir) / match["name"]
        if part in ("curve", "cpt"):
            figure = readme.parent / FIGURES / f"{match['name']}_{part}.svg"
            with tempfile.TemporaryDirectory() as tmp:
                fresh = Path(tmp) / figure.name
                if part == "curve":
                    save_curve_figure(read_json(root / "metrics" / "curve_summary.json"), fresh)
                else:
                    save_cpt_figure(root, fresh)
                if not figure.is_file() or figure.read_bytes() != fresh.read_bytes():
                    changed.append(f"{figure}")
                    if not check:
                        figure.parent.mkdir(parents=True, exist_ok=True)
                        figure.write_bytes(fresh.read_bytes())
        if body != match["body"]:
            changed.append(label)
        return match.group(1) + body + match.group(5)

    new = _BLOCK.sub(fill, text)
    if not check and new != text:
        with atomic_file(readme) as fh:
            fh.write(new)
    return changed


def diff_records(a: str, b: str, results_dir: str | Path = RESULTS) -> str:
    """Markdown table of mean macro-F1 per method and test set, record ``a`` against record ``b``."""
    rows = []
    summaries = {}
    for name in (a, b):
        load_record(name, results_dir)
        summaries[name] = read_json(Path(results_dir) / name / "metrics" / "summary.json")["methods"]
    for method in sorted(set(summaries[a]) | set(summaries[b])):
        for test in sorted(set(summaries[a].get(method, {})) | set(summaries[b].get(method, {}))):
            va = summaries[a].get(method, {}).get(test, {}).get("mean")
            vb = summaries[b].get(method, {}).get(test, {}).get("mean")
            change = f"{100 * (vb - va):+.1f}" if va is not None and vb is not None else "–"
            cells = [f"{100 * v:.1f}" if v is not None else "–" for v in (va, vb)]
            rows.append(f"| `{method}` | {test} | {cells[0]} | {cells[1]} | {change} |")
    head = [f"| method | test set | {a} | {b} | change |", "|---|---|---|---|---|"]
    return "\n".join(head + rows) + "\n"
