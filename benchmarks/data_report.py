"""Cleaning and leakage counts of a real experiment's data, without running the pipeline.

    python benchmarks/data_report.py configs/real/sentimix_hinglish.yaml

Composes the config, turns subsampling off, runs every ``prepare_transfer`` pair and then ``prepare``, then builds
the CPT corpus from ``corpus.real`` (de-leaked against every dev/test text), all in a temporary folder. Paths in
the config are relative to the repository root, as in the pipeline. Prints one JSON object per step; the last
line is one JSON object with all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cmmerge.data.cleaning import CleaningParams  # noqa: E402
from cmmerge.data.corpus import CorpusParams, build_corpus  # noqa: E402
from cmmerge.data.loaders import DatasetSpec  # noqa: E402
from cmmerge.data.prepare import PrepareParams, prepare, prepare_transfer  # noqa: E402
from cmmerge.overlay import compose  # noqa: E402
from cmmerge.params import from_dict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="an experiment config, e.g. configs/real/sentimix_hinglish.yaml")
    args = parser.parse_args()
    params = compose(args.config)
    os.chdir(ROOT)  # config paths (../shared/data/...) are relative to the repository root
    prep = {**params["prepare"], "max_train": None, "max_english": None, "max_dev": None}
    prepare_params = from_dict(PrepareParams, prep, where=f"{args.config}: prepare")
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "transfer").mkdir()
        cleaning = prepare_params.cleaning or CleaningParams()
        for name, spec in (params.get("transfer") or {}).items():
            spec = from_dict(DatasetSpec, spec, where=f"{args.config}: transfer.{name}")
            report = prepare_transfer(name, spec, cleaning, tmp / "transfer" / name, tmp / f"t_{name}.json")
            summary[f"transfer.{name}"] = report
            print(json.dumps({"step": f"transfer.{name}", **report}), flush=True)
        summary["prepare"] = prepare(prepare_params, tmp / "prepared", tmp / "data.json", tmp / "transfer")
        print(json.dumps({"step": "prepare", **summary["prepare"]}), flush=True)
        corpus = from_dict(CorpusParams, {**params["corpus"], "mix": "real"}, where=f"{args.config}: corpus")
        summary["corpus"] = build_corpus(
            corpus, None, tmp / "prepared", tmp / "transfer", tmp / "corpus", tmp / "corpus.json"
        )
        print(json.dumps({"step": "corpus", **summary["corpus"]}), flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
