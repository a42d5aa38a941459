"""Bad inputs end in a clear DataError naming the file, or in a counted cleaning step: never a silent drop."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cmmerge.data.cleaning import CleaningParams, clean_rows, clean_text
from cmmerge.data.corpus import CorpusParams, build_corpus
from cmmerge.data.loaders import DatasetSpec, load_corpus, load_split, load_tagged
from cmmerge.data.prepare import PrepareParams, prepare
from cmmerge.errors import DataError


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _task(root: Path, train: list[tuple[str, str]], dev: list[tuple[str, str]], test: list[tuple[str, str]]) -> Path:
    for split, rows in (("train", train), ("dev", dev), ("test", test)):
        records = [{"id": f"{split}-{i}", "text": t, "label": y} for i, (t, y) in enumerate(rows)]
        _jsonl(root / f"{split}.jsonl", records)
    return root


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"text": "acha \xff\xfe movie", "label": "positive"}\n')
    with pytest.raises(DataError, match=r"train\.jsonl: not valid UTF-8 \(byte 0xff"):
        load_split(DatasetSpec(path=str(tmp_path)), "train")
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"ok line\n\x81 broken\n")
    with pytest.raises(DataError, match=r"c\.txt: not valid UTF-8"):
        load_corpus(corpus)


def test_conll_broken_line(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text("meta\t1\tpositive\nye\tHin\nfilm\tEng\n\nmeta\t2\tnegative\nbakwas Hin\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.conll:6: expected 'token<TAB>lang', got 1"):
        load_split(DatasetSpec(path=str(tmp_path)), "train")
    path.write_text("ye\tHin\nmeta\t1\tpositive\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.conll:1: token line before the first 'meta' line"):
        load_split(DatasetSpec(path=str(tmp_path)), "train")
    tagged = tmp_path / "lid.txt"
    tagged.write_text("hello\tEN\nyaar\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"lid\.txt:2: expected 'token<TAB>tag'"):
        load_tagged(tagged)


def test_conll_spanish_word_meta_is_a_token(tmp_path):
    """SentiMix Spanglish has the word 'meta' (goal) as a token line; it must not start a new tweet."""
    path = tmp_path / "train.conll"
    path.write_text("meta\t7\tpositive\nmi\tlang2\nmeta\tlang2\n\nmeta\t8\tneutral\nok\tlang1\n", encoding="utf-8")
    rows = load_split(DatasetSpec(path=str(tmp_path)), "train")
    assert [r["text"] for r in rows] == ["mi meta", "ok"]


def test_empty_files(tmp_path):
    (tmp_path / "train.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl: file has no rows"):
        load_split(DatasetSpec(path=str(tmp_path)), "train")
    (tmp_path / "train.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.csv: empty file"):
        load_split(DatasetSpec(path=str(tmp_path / "train.csv")), "train")
    (tmp_path / "c.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c\.txt: corpus file is empty"):
        load_corpus(tmp_path / "c.txt")


def test_missing_field_and_bad_splits_key(tmp_path):
    _jsonl(tmp_path / "train.jsonl", [{"sentence": "x", "label": "a"}])
    with pytest.raises(DataError, match=r"row 1 has no text field 'text' \(fields: label, sentence\)"):
        load_split(DatasetSpec(path=str(tmp_path)), "train")
    with pytest.raises(DataError, match=r"\.splits: key 'training' is not a split"):
        DatasetSpec(path=str(tmp_path), splits={"training": "test"}).validate("prepare.task")


def test_unseen_test_label(tmp_path):
    task = _task(
        tmp_path / "task",
        train=[("accha hai", "positive"), ("bekar hai", "negative")],
        dev=[("theek hai", "positive")],
        test=[("pata nahi", "neutral")],
    )
    params = PrepareParams(task=DatasetSpec(path=str(task)))
    with pytest.raises(DataError, match=r"task \[test\]: label\(s\) 'neutral' never occur in the task's train split"):
        prepare(params, tmp_path / "out", tmp_path / "data.json")
    assert not (tmp_path / "out").exists()


def test_cleaning_counts_every_reason(tmp_path):
    dirty = [
        ("Bahut accha movie đ\x9f\x98\x82 https://t.co/abc", "positive"),  # mojibake + URL
        ("@ raj   kya   bakwas", "negative"),  # user + whitespace
        ("   ", "negative"),  # empty after cleaning
        ("bahut accha movie 😂 http", "positive"),  # duplicate of row 1 after cleaning
        ("Dekha nahi abhi tak", "negative"),
        ("leaked test tweet", "negative"),  # also in test
        ("leaked dev tweet", "positive"),  # also in dev
    ]
    task = _task(
        tmp_path / "task",
        train=dirty,
        dev=[("leaked dev tweet", "positive"), ("LEAKED   test tweet", "negative")],
        test=[("leaked test tweet", "negative"), ("ekdum mast", "positive")],
    )
    report = prepare(PrepareParams(task=DatasetSpec(path=str(task))), tmp_path / "out", tmp_path / "data.json")
    train = report["task"]["train"]
    assert train["rows_read"] == 7
    assert train["fixed_mojibake"] == 1 and train["normalised_url"] == 1 and train["normalised_user"] == 1
    assert train["dropped_empty"] == 1 and train["dropped_duplicate"] == 1
    assert train["dropped_leak_in_test"] == 1 and train["dropped_leak_in_dev"] == 1
    assert train["rows"] == 3
    assert report["task"]["dev"]["dropped_leak_in_test"] == 1, "case/space variants of a test text are leaks too"
    on_disk = json.loads((tmp_path / "data.json").read_text())
    assert on_disk == report
    # every row read is either kept or dropped for a counted reason
    dropped = sum(v for k, v in train.items() if k.startswith("dropped_"))
    assert train["rows"] + dropped == train["rows_read"]


def test_curly_quotes_are_not_mojibake():
    counts = Counter()
    assert clean_text("it ’ s fine", CleaningParams(), counts) == "it ’ s fine"
    assert counts["fixed_mojibake"] == 0
    assert clean_rows([{"text": "đđ boys"}], CleaningParams(), counts)[0]["text"] == "đđ boys"
    assert counts["unrepaired_mojibake"] == 1, "lost bytes cannot be repaired but are reported"


def test_cpt_corpus_containing_test_set(tmp_path):
    task = _task(
        tmp_path / "task",
        train=[("accha hai", "positive"), ("bekar hai", "negative")],
        dev=[("theek hai yaar", "positive")],
        test=[("movie ekdum bakwas thi", "negative"), ("gaane mast hain", "positive")],
    )
    prepare(PrepareParams(task=DatasetSpec(path=str(task))), tmp_path / "prepared", tmp_path / "data.json")
    transfer = tmp_path / "transfer" / "en_es"
    _jsonl(transfer / "test.jsonl", [{"text": "la pelicula was great", "label": "positive"}])
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "Movie ekdum BAKWAS thi\ngaane mast hain\nla pelicula was great\ntheek hai yaar\nkal milte hain\n"
        "aaj mausam accha hai\n",
        encoding="utf-8",
    )
    report = build_corpus(
        CorpusParams(real=str(corpus), mix="real", valid_fraction=0.0),
        synthetic_path=None,
        prepared_dir=tmp_path / "prepared",
        transfer_dir=tmp_path / "transfer",
        out_dir=tmp_path / "corpus",
        metrics_path=tmp_path / "corpus.json",
    )
    assert report["dropped_leak_in_eval"] == 4, "task test (2), task dev (1) and transfer test (1) texts removed"
    kept = (tmp_path / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(kept) == ["aaj mausam accha hai", "kal milte hain"]


def test_transfer_label_outside_the_task_labels_stops_prepare_cleanly(tmp_path):
    """Stage level: prepare_transfer writes the pair whole; prepare then fails in one line, writing nothing."""
    from pipeline.repo import copy_repo, edit_params, run_stage

    repo = copy_repo(tmp_path / "repo", with_git=False)
    edit_params(repo, **{"transfer.en_es.label_map": {"neutral": "neutro"}})
    proc = run_stage(repo, "prepare_transfer", "en_es")
    assert proc.returncode == 0, proc.stderr
    written = (repo / "data/transfer/en_es/test.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(written) == len((repo / "data/demo/spanglish_sentiment/test.jsonl").read_text().splitlines())
    metrics_before = (repo / "metrics/data.json").read_bytes()
    proc = run_stage(repo, "prepare")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cmmerge: error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0] == (
        "cmmerge: error: data/transfer/en_es/test.jsonl (transfer pair 'en_es'): label(s) 'neutro' never occur in "
        "the task's train split (train labels: negative, neutral, positive); map or drop them with label_map"
    )
    assert not (repo / "data/prepared").exists()
    assert (repo / "metrics/data.json").read_bytes() == metrics_before, "metrics/data.json was rewritten"
