"""The ``synthesize`` stage: a synthetic code-mixed corpus from English text.

Two generators (``synthesize.generator``): ``lexical`` substitutes units of a bilingual lexicon
(:mod:`cmmerge.synth.lexical`); ``alignment`` switches phrases word-aligned with eflomal in a parallel
English / code-mixed corpus (:mod:`cmmerge.synth.alignment`). Both switch until each sentence reaches
``target_cmi`` and write ``corpus.txt`` (one sentence per line, the CPT input) and ``tagged.jsonl``.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cmmerge.data.cmi import switch_fraction
from cmmerge.data.loaders import SPLITS, DatasetSpec, load_corpus, load_parallel, split_file
from cmmerge.errors import ConfigError, DataError
from cmmerge.fsutil import atomic_dir, read_jsonl, write_json, write_jsonl
from cmmerge.synth.lexical import CM, EN, Lexicon, synthesize

log = logging.getLogger(__name__)


@dataclass
class ParallelSpec:
    """A parallel corpus: a folder of split files (or one file) with an English and a code-mixed field."""

    path: str
    source_field: str = "en"
    target_field: str = "cs"
    # only these splits teach the aligner; the others (test) stay unseen, to score the generator on
    splits: list[str] = field(default_factory=lambda: ["train", "dev"])

    def validate(self, where: str) -> None:
        bad = [s for s in self.splits if s not in SPLITS]
        if bad or not self.splits:
            raise ConfigError(f"{where}.splits must list some of {', '.join(SPLITS)}, got {self.splits}")

    def pairs(self) -> list[tuple[str, str]]:
        root = Path(self.path)
        if root.is_file():
            return load_parallel(root, self.source_field, self.target_field)
        out = []
        for split in self.splits:
            path = split_file(DatasetSpec(path=self.path), split)
            if path is None:
                raise DataError(f"{self.path}: no '{split}' file of parallel pairs")
            out += load_parallel(path, self.source_field, self.target_field)
        return out


@dataclass
class SynthesizeParams:
    """``synthesize`` section of params.yaml."""

    source: str  # English text: a JSONL file with a "text" field, or a plain-text file
    generator: Literal["lexical", "alignment"] = "lexical"
    lexicon: str | None = None  # generator lexical: TSV with columns en, hi
    parallel: ParallelSpec | None = None  # generator alignment: the parallel corpus to align
    max_phrase_len: int = 4  # alignment: longest English phrase switched as one unit
    min_count: int = 2  # alignment: a phrase pair seen fewer times is alignment noise
    min_prob: float = 0.2  # alignment: so is a target with a smaller share of its English phrase's alignments
    target_cmi: float = 30.0
    copies: int = 1
    seed: int = 13

    def validate(self, where: str) -> None:
        if not 0.0 <= self.target_cmi <= 50.0:
            raise ConfigError(f"{where}.target_cmi must be in [0, 50] (two languages), got {self.target_cmi}")
        if self.copies < 1:
            raise ConfigError(f"{where}.copies must be a positive integer, got {self.copies}")
        if self.generator == "lexical" and not self.lexicon:
            raise ConfigError(f"{where}.lexicon is required when {where}.generator is 'lexical'")
        if self.generator == "alignment" and self.parallel is None:
            raise ConfigError(
                f"{where}.parallel is required when {where}.generator is 'alignment' "
                "(e.g. {path: ../shared/data/hinglish_top_parallel, source_field: en, target_field: cs})"
            )
        if self.max_phrase_len < 1 or self.min_count < 1:
            raise ConfigError(f"{where}.max_phrase_len and {where}.min_count must be positive integers")
        if not 0.0 <= self.min_prob <= 1.0:
            raise ConfigError(f"{where}.min_prob must be in [0, 1], got {self.min_prob}")


def _source_texts(path: str) -> list[str]:
    if Path(path).suffix == ".jsonl":
        return [r["text"] for r in read_jsonl(path) if r.get("text")]
    return load_corpus(path)


def build_lexicon(params: SynthesizeParams, exclude: set[str] | None = None) -> tuple[Lexicon, dict]:
    """The switch lexicon of the configured generator, and how it was built.

    For ``alignment``, parallel pairs whose code-mixed side is in ``exclude`` (normalised text) are left
    out, so the generator never learns a sentence it is scored against.
    """
    if params.generator == "lexical":
        lexicon = Lexicon.from_tsv(params.lexicon)
        return lexicon, {"generator": "lexical", "lexicon": params.lexicon, "entries": len(lexicon.entries)}
    from cmmerge.synth.alignment import phrase_lexicon

    pairs = params.parallel.pairs()
    if exclude:
        # only reports pass ``exclude``; the stage never does, so its DVC deps need not list cleaning.py
        from cmmerge.data.cleaning import keys

        kept = [p for p in pairs if keys([{"text": p[1]}]).isdisjoint(exclude)]
        dropped = len(pairs) - len(kept)
        pairs = kept
    else:
        dropped = 0
    lexicon, stats = phrase_lexicon(
        pairs, params.max_phrase_len, params.min_count, min_prob=params.min_prob, seed=params.seed
    )
    return lexicon, {"generator": "alignment", "parallel": params.parallel.path, "dropped_excluded": dropped, **stats}


def run_synthesize(params: SynthesizeParams, out_dir: str | Path, metrics_path: str | Path) -> dict:
    texts = _source_texts(params.source)
    lexicon, built = build_lexicon(params)
    rows = []
    for copy in range(params.copies):
        rows += synthesize(texts, lexicon, params.target_cmi, seed=params.seed + copy)
    with atomic_dir(out_dir) as tmp:
        (tmp / "corpus.txt").write_text("".join(r["text"] + "\n" for r in rows), encoding="utf-8")
        write_jsonl(tmp / "tagged.jsonl", rows)
    cmis = [r["cmi"] for r in rows]
    report = {
        **built,
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
