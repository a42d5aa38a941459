"""The ``synthesize`` stage: a synthetic code-mixed corpus from English text."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from pathlib import Path

from cmmerge.data.cmi import switch_fraction
from cmmerge.data.loaders import load_corpus
from cmmerge.errors import ConfigError
from cmmerge.fsutil import atomic_dir, read_jsonl, write_json, write_jsonl
from cmmerge.synth.lexical import CM, EN, Lexicon, synthesize

log = logging.getLogger(__name__)


@dataclass
class SynthesizeParams:
    """``synthesize`` section of params.yaml."""

    lexicon: str
    source: str  # English text: a JSONL file with a "text" field, or a plain-text file
    target_cmi: float = 30.0
    copies: int = 1
    seed: int = 13

    def validate(self, where: str) -> None:
        if not 0.0 <= self.target_cmi <= 50.0:
            raise ConfigError(f"{where}.target_cmi must be in [0, 50] (two languages), got {self.target_cmi}")
        if self.copies < 1:
            raise ConfigError(f"{where}.copies must be a positive integer, got {self.copies}")


def _source_texts(path: str) -> list[str]:
    if Path(path).suffix == ".jsonl":
        return [r["text"] for r in read_jsonl(path) if r.get("text")]
    return load_corpus(path)


def run_synthesize(params: SynthesizeParams, out_dir: str | Path, metrics_path: str | Path) -> dict:
    texts = _source_texts(params.source)
    lexicon = Lexicon.from_tsv(params.lexicon)
    rows = []
    for copy in range(params.copies):
        rows += synthesize(texts, lexicon, params.target_cmi, seed=params.seed + copy)
    with atomic_dir(out_dir) as tmp:
        (tmp / "corpus.txt").write_text("".join(r["text"] + "\n" for r in rows), encoding="utf-8")
        write_jsonl(tmp / "tagged.jsonl", rows)
    cmis = [r["cmi"] for r in rows]
    report = {
        "sentences": len(rows),
        "target_cmi": params.target_cmi,
        "cmi_mean": statistics.fmean(cmis),
        "cmi_std": statistics.pstdev(cmis),
        "mixed_fraction": sum(c > 0 for c in cmis) / len(cmis),
        "switch_fraction_mean": statistics.fmean(switch_fraction(r["langs"], (EN, CM)) for r in rows),
    }
    write_json(metrics_path, report)
    log.info(
        "synthesised %d sentences, CMI %.1f ± %.1f (target %.1f)",
        len(rows),
        report["cmi_mean"],
        report["cmi_std"],
        params.target_cmi,
    )
    return report
