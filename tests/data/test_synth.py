"""Synthetic code-mixing: lexical and alignment generators, the synthesize stage, the report helpers."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from cmmerge.data.cmi import cmi
from cmmerge.errors import ConfigError
from cmmerge.params import from_dict
from cmmerge.synth.alignment import extract_phrases, grow_diag_final_and, phrase_lexicon
from cmmerge.synth.lexical import CM, EN, Lexicon, code_mix, synthesize
from cmmerge.synth.pipeline import SynthesizeParams, run_synthesize
from cmmerge.synth.report import chrf, plot_rows, vocabulary_overlap

ROOT = Path(__file__).resolve().parents[2]
DEMO_LEXICON = ROOT / "data" / "demo" / "lexicon_en_hi.tsv"
DEMO_ENGLISH = ROOT / "data" / "demo" / "english_sentiment" / "train.jsonl"


def test_lexical_multiword_units_and_target():
    lex = Lexicon({("a", "waste", "of", "time"): ["time", "waste"], ("movie",): ["film"], ("very",): ["bahut"]})
    text, tags = code_mix("This movie was a waste of time , very long", lex, 50.0, random.Random(0))
    assert ("a waste of time" in text) != ("time waste" in text), "a unit is switched whole or not at all"
    unit, _ = code_mix("This was a waste of time", lex, 50.0, random.Random(0))
    assert unit == "This was time waste", "never word by word ('a waste of' -> 'time waste' as one unit)"
    assert len(tags) == len(text.split())
    assert tags.count(CM) <= tags.count(EN), "the matrix language stays English"
    zero, zero_tags = code_mix("This movie was very long", lex, 0.0, random.Random(0))
    assert zero == "This movie was very long" and CM not in zero_tags


def test_lexical_cmi_tracks_target():
    lex = Lexicon.from_tsv(DEMO_LEXICON)
    texts = [r["text"] for r in map(json.loads, DEMO_ENGLISH.read_text(encoding="utf-8").splitlines())]
    low = synthesize(texts, lex, 10.0, seed=1)
    high = synthesize(texts, lex, 40.0, seed=1)
    mean = lambda rows: sum(r["cmi"] for r in rows) / len(rows)  # noqa: E731
    assert mean(low) < mean(high)
    assert all(r["cmi"] == pytest.approx(cmi(r["langs"], (EN, CM))) for r in high)


def test_grow_diag_final_and():
    forward = {(0, 0), (1, 1), (2, 3)}
    backward = {(0, 0), (1, 1), (1, 2)}
    links = grow_diag_final_and(forward, backward, 3, 4)
    assert {(0, 0), (1, 1)} <= links
    assert (1, 2) in links, "neighbour of an intersection link covering an unaligned target word"
    assert (2, 3) in links, "final-and: both words still unaligned"


def test_phrase_extraction_is_consistent():
    src, tgt = ["remind", "me", "at", "9", "pm"], ["9", "pm", "pe", "mujhe", "yaad", "dilao"]
    links = {(0, 4), (0, 5), (1, 3), (2, 2), (3, 0), (4, 1)}
    phrases = dict(extract_phrases(src, tgt, links, max_len=3))
    assert phrases[("at", "9", "pm")] == ("9", "pm", "pe")
    assert phrases[("remind", "me")] == ("mujhe", "yaad", "dilao")
    assert ("at", "9") not in phrases, "'pe' and '9' enclose 'pm', aligned outside the span"


def _toy_parallel() -> list[tuple[str, str]]:
    pairs = []
    for t in ["5", "6", "7", "8", "9", "10"]:
        pairs += [
            (f"set an alarm for {t} am", f"{t} am ke liye alarm set karo"),
            (f"remind me to call mom at {t} pm", f"mujhe {t} pm pe mom ko call karna yaad dilao"),
            (f"what is the weather at {t} pm", f"{t} pm pe weather kaisa hai"),
            (f"play music at {t} am", f"{t} am pe music bajao"),
        ]
    return pairs


def test_alignment_generator_learns_switchable_phrases():
    pytest.importorskip("eflomal")
    lexicon, stats = phrase_lexicon(_toy_parallel(), max_phrase_len=3, min_count=2)
    assert stats["pairs"] == 24 and stats["phrases"] == len(lexicon.entries) > 0
    for key, repl in lexicon.entries.items():
        tags = lexicon.tags[key]
        assert len(tags) == len(repl) and CM in tags, "every phrase brings in a code-mixed word"
        assert [w for w, t in zip(repl, tags, strict=True) if t == EN] == [w for w in repl if w in key]
    out = synthesize(["set an alarm for 11 am", "play music at noon"], lexicon, 40.0, seed=0)
    assert any(r["cmi"] > 0 for r in out)


def _params(**kw) -> SynthesizeParams:
    return from_dict(SynthesizeParams, {"source": str(DEMO_ENGLISH), **kw}, where="params.yaml: synthesize")


def test_synthesize_stage_default_lexical(tmp_path):
    """The embedded default (demo lexicon on the demo English data) still runs, fast."""
    report = run_synthesize(_params(lexicon=str(DEMO_LEXICON), copies=2), tmp_path / "synth", tmp_path / "m.json")
    assert report["generator"] == "lexical" and report["sentences"] > 0 and report["cmi_mean"] > 0
    lines = (tmp_path / "synth" / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == report["sentences"]


def test_synthesize_stage_alignment(tmp_path):
    pytest.importorskip("eflomal")
    par = tmp_path / "par"
    par.mkdir()
    (par / "train.jsonl").write_text(
        "".join(json.dumps({"en": en, "cs": cs}) + "\n" for en, cs in _toy_parallel()), encoding="utf-8"
    )
    src = tmp_path / "en.txt"
    src.write_text("set an alarm for 11 am\nplay music at 9 am please\n", encoding="utf-8")
    params = from_dict(
        SynthesizeParams,
        {"source": str(src), "generator": "alignment", "parallel": {"path": str(par), "splits": ["train"]}},
        where="synthesize",
    )
    report = run_synthesize(params, tmp_path / "synth", tmp_path / "m.json")
    assert report["generator"] == "alignment" and report["phrases"] > 0 and report["sentences"] == 2


def test_synthesize_config_errors():
    with pytest.raises(ConfigError, match=r"synthesize\.lexicon is required when .*generator is 'lexical'"):
        _params()
    with pytest.raises(ConfigError, match=r"synthesize\.parallel is required"):
        _params(generator="alignment")
    with pytest.raises(ConfigError, match=r"generator"):
        _params(generator="gpt", lexicon="x")
    with pytest.raises(ConfigError, match=r"parallel\.splits must list"):
        _params(generator="alignment", parallel={"path": "x", "splits": ["training"]})


def test_report_helpers():
    overlap = vocabulary_overlap(["yaar movie mast", "movie"], ["movie bahut mast thi"])
    assert overlap["types"] == 3 and overlap["type_overlap"] == pytest.approx(2 / 3)
    assert overlap["token_coverage"] == pytest.approx(3 / 4)
    assert chrf(["kal ka weather"], ["kal ka weather"]) == pytest.approx(100.0)
    assert chrf(["xyz"], ["kal ka weather"]) < 10
    rows = plot_rows({"real": {0: 0.5, 5: 0.5}})
    assert rows == [{"corpus": "real", "cmi_bin": 0, "share": 0.5}, {"corpus": "real", "cmi_bin": 5, "share": 0.5}]
