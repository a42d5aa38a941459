"""The ``cmmerge`` command: every stage's logic, callable outside DVC with explicit paths.

The DVC stages (``stages/*.py``) call the same library functions with the pipeline's fixed paths;
here each input and output is an argument, and settings come from a params file section, so a
researcher can run one step on their own folders::

    cmmerge base xlm-roberta-base models/base
    cmmerge cpt models/base data/corpus models/cpt --params params.yaml
    cmmerge merge merge.yaml models/merged
    cmmerge finetune models/merged data/prepared/task models/ft --labels data/prepared/labels.json --seed 1
    cmmerge evaluate full_ft models/finetune/full_ft
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cmmerge import __version__
from cmmerge.runner import run_main

#: commands that write an output folder: each checks it first (cmmerge.fsutil.check_output) and takes --force
FOLDER_WRITERS = ("base", "prepare", "synthesize", "corpus", "cpt", "finetune")


def _params(args, section: str, cls):
    from cmmerge.params import load_section

    return load_section(section, cls, args.params)


def _guard(args, out: str, inputs: list, holds: str | None = None) -> None:
    """Refuse ``out`` before any work if writing it would destroy an input or a folder cmmerge did not write.

    ``holds``: a file this command writes into ``out``, which marks an earlier output of it as replaceable.
    """
    from cmmerge.fsutil import check_output, has_manifest

    def ours(folder: Path) -> bool:
        return has_manifest(folder) or (holds is not None and (folder / holds).is_file())

    params = [args.params] if getattr(args, "params", None) else []
    check_output(out, [*inputs, *params], force=args.force, ours=ours, what=f"{args.command} output folder")


def _base(args) -> None:
    from cmmerge.models import export_base

    export_base(
        args.model,
        args.out,
        seed=args.seed,
        trust_remote_code=args.trust_remote_code,
        allow_pickle=args.allow_pickle,
        force=args.force,
    )


def _prepare(args) -> None:
    from cmmerge.data.prepare import PrepareParams, prepare

    params = _params(args, "prepare", PrepareParams)
    _guard(args, args.out, [], holds="labels.json")
    prepare(params, args.out, args.metrics)


def _synthesize(args) -> None:
    from cmmerge.synth.pipeline import SynthesizeParams, run_synthesize

    params = _params(args, "synthesize", SynthesizeParams)
    _guard(args, args.out, [], holds="corpus.txt")
    run_synthesize(params, args.out, args.metrics)


def _corpus(args) -> None:
    from cmmerge.data.corpus import CorpusParams, build_corpus

    _guard(args, args.out, [args.synthetic, args.prepared, args.transfer], holds="train.txt")
    build_corpus(
        _params(args, "corpus", CorpusParams), args.synthetic, args.prepared, args.transfer, args.out, args.metrics
    )


def _cpt(args) -> None:
    from cmmerge.fsutil import curves_aside
    from cmmerge.train.cpt import CptParams, run_cpt

    params = _params(args, "cpt", CptParams)
    _guard(args, args.out, [args.base, args.corpus])
    with curves_aside(args.live) as live:
        run_cpt(args.base, args.corpus, params, args.out, live)


def _finetune(args) -> None:
    from cmmerge.fsutil import curves_aside
    from cmmerge.train.finetune import FinetuneParams, run_finetune
    from cmmerge.train.recipe import resolve_recipe

    _guard(args, args.out, [args.init, args.train, args.labels])
    params = resolve_recipe(_params(args, "finetune", FinetuneParams), args.recipe)
    seed = params.seeds[0] if args.seed is None else args.seed
    with curves_aside(args.live) as live:
        run_finetune(args.init, args.train, args.labels, params, seed, args.out, live)


def _evaluate(args) -> None:
    from cmmerge.eval.evaluate import EvaluateParams, evaluate_method

    evaluate_method(
        args.method,
        args.models,
        args.prepared,
        args.transfer,
        _params(args, "evaluate", EvaluateParams),
        metrics_path=args.metrics or f"metrics/eval/{args.method}.json",
        predictions_path=args.predictions or f"results/predictions/{args.method}.json",
        confusion_path=args.confusion or f"metrics/plots/confusion/{args.method}.json",
    )


def _report(args) -> None:
    from cmmerge.eval.report import ReportParams, build_report
    from cmmerge.params import load_yaml

    methods = args.methods or list(load_yaml(args.params).get("methods", {}))
    build_report(
        methods,
        args.eval_dir,
        args.predictions,
        _params(args, "report", ReportParams),
        args.summary,
        args.table,
        args.train,
    )


def _config(args) -> None:
    if args.action == "schema":
        import json

        from cmmerge.schema import params_json_schema

        print(json.dumps(params_json_schema(), indent=2, ensure_ascii=False))
        return
    if args.config is None:
        from cmmerge.errors import ConfigError

        raise ConfigError(f"cmmerge config {args.action} needs an experiment config (e.g. configs/default.yaml)")
    (_config_apply if args.action == "apply" else _config_show)(args)


def _config_show(args) -> None:
    from cmmerge.overlay import composed_and_validated, dump

    print(dump(composed_and_validated(args.config)), end="")


def _config_apply(args) -> None:
    from cmmerge.overlay import apply

    apply(args.config, args.out)


def _exp_run(args) -> None:
    from cmmerge.overlay import exp_run

    code = exp_run(args.config, args.dvc_args)
    if code:
        raise SystemExit(code)


def _results(args) -> None:
    from cmmerge import records

    if args.action == "record":
        if len(args.names) != 1:
            raise SystemExit("cmmerge results record: give exactly one record name")
        path = records.record_run(args.names[0], config=args.config, check_workspace=not args.no_check)
        print(f"recorded {path}")
    elif args.action == "verify":
        names = args.names or sorted(p.parent.name for p in records.RESULTS.glob("*/record.json"))
        for name in names:
            meta = records.load_record(name)
            print(f"{name}: {len(meta['files'])} files match record.json (commit {meta['git_commit'][:12]})")
    elif args.action == "table":
        for name in args.names:
            print(records.record_table(name, part=args.part), end="")
    elif args.action == "readme":
        changed = records.render_readme(args.readme, check=args.check)
        if args.check and changed:
            from cmmerge.errors import DataError

            raise DataError(
                f"{args.readme}: results blocks {', '.join(changed)} differ from their records; "
                "run `cmmerge results readme` and commit"
            )
        print(f"{args.readme}: {len(changed)} results block(s) {'stale' if args.check else 'rewritten'}")
    elif args.action == "diff":
        if len(args.names) != 2:
            raise SystemExit("cmmerge results diff: give two record names")
        print(records.diff_records(*args.names), end="")


def _pr_report(args) -> None:
    from cmmerge.pr_report import pr_report

    print(f"wrote {pr_report('.', args.base, args.out)}")


def build_parser() -> argparse.ArgumentParser:
    from cmmerge.data.fetch import register as register_data
    from cmmerge.merge.cli import register as register_merge

    parser = argparse.ArgumentParser(prog="cmmerge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"cmmerge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help_text: str, params: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        if params:
            p.add_argument("--params", default="params.yaml", help="params file whose section configures this step")
        if name in FOLDER_WRITERS:
            p.add_argument(
                "--force",
                action="store_true",
                help="replace the output folder even if it is a non-empty folder cmmerge did not write",
            )
        p.set_defaults(func=func)
        return p

    p = add("base", _base, "save θ_base (with a pre-training head) as a local checkpoint", params=False)
    p.add_argument("model", help="hub id, local folder, or pkg:<python package>")
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=13, help="initialises a missing pre-training head")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="read pickle weights (pytorch_model.bin), which can run code: only for a checkpoint you trust",
    )

    p = add("prepare", _prepare, "load, clean and de-leak labelled data (params section 'prepare')")
    p.add_argument("--out", default="data/prepared")
    p.add_argument("--metrics", default="metrics/data.json")

    p = add("synthesize", _synthesize, "code-mix English text (params section 'synthesize')")
    p.add_argument("--out", default="data/synth")
    p.add_argument("--metrics", default="metrics/synth.json")

    p = add("corpus", _corpus, "build the CPT corpus, cleaned and de-leaked (params section 'corpus')")
    p.add_argument("--synthetic", default="data/synth/corpus.txt")
    p.add_argument("--prepared", default="data/prepared")
    p.add_argument("--transfer", default="data/transfer")
    p.add_argument("--out", default="data/corpus")
    p.add_argument("--metrics", default="metrics/corpus.json")

    p = add("cpt", _cpt, "continued pre-training, MLM or CLM (params section 'cpt')")
    p.add_argument("base")
    p.add_argument("corpus", help="folder with train.txt (and valid.txt)")
    p.add_argument("out")
    p.add_argument("--live", default="metrics/train/cpt", help="DVCLive folder for the training curves")

    p = add("finetune", _finetune, "fine-tune a sequence classifier (params section 'finetune')")
    p.add_argument("init", help="starting checkpoint")
    p.add_argument("train", help="prepared folder with train.jsonl (and dev.jsonl)")
    p.add_argument("out")
    p.add_argument("--labels", default="data/prepared/labels.json")
    p.add_argument("--seed", type=int, default=None, help="default: the first of finetune.seeds")
    p.add_argument("--live", default="metrics/train/finetune")
    p.add_argument("--recipe", default="metrics/recipe.json", help="the recipe stage's record, read for 'dev' values")

    p = add("evaluate", _evaluate, "score a method's seed<k> models on the test sets (params section 'evaluate')")
    p.add_argument("method")
    p.add_argument("models", help="folder of seed<k> model folders")
    p.add_argument("--prepared", default="data/prepared")
    p.add_argument("--transfer", default="data/transfer")
    p.add_argument("--metrics")
    p.add_argument("--predictions")
    p.add_argument("--confusion")

    p = add("report", _report, "summary.json and the Markdown table of all methods (params section 'report')")
    p.add_argument("--methods", nargs="*", help="default: the methods in the params file")
    p.add_argument("--eval-dir", default="metrics/eval")
    p.add_argument("--predictions", default="results/predictions")
    p.add_argument("--summary", default="metrics/summary.json")
    p.add_argument("--table", default="metrics/report.md")
    p.add_argument("--train", default="data/prepared/task/train.jsonl", help="training split (chance baselines)")

    p = add("config", _config_show, "print the params that an experiment config composes to", params=False)
    p.add_argument(
        "action", choices=["show", "apply", "schema"], help="show: print; apply: write to --out; schema: JSON Schema"
    )
    p.add_argument("config", nargs="?", help="an experiment config (YAML with include: [...])")
    p.add_argument("--out", default="params.yaml")
    p.set_defaults(func=_config)

    p = add("exp", _exp_run, "compose an experiment config into params.yaml and `dvc exp run` it", params=False)
    p.add_argument("action", choices=["run"])
    p.add_argument("config")
    p.add_argument("dvc_args", nargs=argparse.REMAINDER, help="passed on to dvc exp run (after --)")

    p = add("results", _results, "experiment records under results/: record, verify, table, readme, diff", params=False)
    p.add_argument("action", choices=["record", "verify", "table", "readme", "diff"])
    p.add_argument("names", nargs="*", help="record name(s) (results/<name>)")
    p.add_argument("--config", help="record: the experiment config the run composed (kept in record.json)")
    p.add_argument("--no-check", action="store_true", help="record: skip the check that dvc.lock matches the workspace")
    p.add_argument("--readme", default="README.md")
    p.add_argument("--check", action="store_true", help="readme: write nothing; exit 2 if a block is stale")
    from cmmerge.records import PARTS  # the parts README blocks name: one list for both

    p.add_argument("--part", default="methods", choices=PARTS, help="table: which part of the record")

    pr_help = "Markdown comment for a pull request: metrics diff, tables, changed plots"
    p = add("pr-report", _pr_report, pr_help, params=False)
    p.add_argument("--base", required=True, help="the base revision, e.g. origin/main")
    p.add_argument("--out", default="pr-report", help="folder for report.md and its images")

    register_merge(sub)
    register_data(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
