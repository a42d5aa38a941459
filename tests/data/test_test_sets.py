"""Test sets are left whole; leakage is removed from training and dev data only, against every test set.

``prepare_transfer`` writes a transfer pair's test set with every row (only ``label_map: {X: null}`` drops);
``prepare`` keeps the task's test split whole, removes from train/dev (task and English) every text of any test
set, checks the transfer labels, and reports test-side duplicates and the texts test sets share.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cmmerge.data.cleaning import CleaningParams
from cmmerge.data.loaders import DatasetSpec
from cmmerge.data.prepare import PrepareParams, prepare, prepare_transfer
from cmmerge.errors import DataError
from cmmerge.overlay import compose
from cmmerge.params import from_dict

ROOT = Path(__file__).resolve().parents[2]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _split(root: Path, split: str, rows: list[tuple[str, str]]) -> None:
    _jsonl(root / f"{split}.jsonl", [{"id": f"{split}-{i}", "text": t, "label": y} for i, (t, y) in enumerate(rows)])


TRAIN = [
    ("accha hai", "positive"),
    ("ACCHA   hai", "positive"),  # duplicate of the first after normalisation
    ("bekar hai", "negative"),
    ("bekar hai", "negative"),  # exact duplicate
    ("   ", "negative"),  # empty after cleaning
    ("theek thaak", "neutral"),
]
TEST = [
    ("movie mast thi", "positive"),
    ("Movie  mast thi", "positive"),  # duplicate: kept
    ("   ", "neutral"),  # empty after cleaning: kept
    ("\t", "negative"),  # empty: kept
    ("bakwas", "negative"),
    ("bakwas", "negative"),  # exact duplicate: kept
    ("la pelicula was great", "positive"),  # also in the transfer test set: kept in both
]


def _task(root: Path, train=TRAIN, dev=(("thik hai", "neutral"),), test=TEST) -> Path:
    for split, rows in (("train", train), ("dev", dev), ("test", test)):
        _split(root, split, list(rows))
    return root


def test_task_test_split_keeps_every_row_while_train_duplicates_go(tmp_path):
    task = _task(tmp_path / "task")
    report = prepare(PrepareParams(task=DatasetSpec(path=str(task))), tmp_path / "out", tmp_path / "data.json")
    test = _read(tmp_path / "out/task/test.jsonl")
    assert [r["id"] for r in test] == [f"test-{i}" for i in range(len(TEST))], "every test row, in order"
    assert [r["text"] for r in test][2:4] == ["", ""], "empty texts are kept (cleaned to empty)"
    counts = report["task"]["test"]
    assert counts["rows_read"] == counts["rows"] == len(TEST)
    assert counts["duplicate_kept"] == 2 and counts["empty_kept"] == 2
    assert not [k for k in counts if k.startswith("dropped_")], counts
    train = report["task"]["train"]
    assert train["dropped_duplicate"] == 2 and train["dropped_empty"] == 1 and train["rows"] == 3
    assert [r["text"] for r in _read(tmp_path / "out/task/train.jsonl")] == ["accha hai", "bekar hai", "theek thaak"]
    assert json.loads((tmp_path / "data.json").read_text()) == report
    assert report["transfer"] == {} and report["test_overlap"] == {}


def test_only_an_explicit_null_label_map_drops_test_rows(tmp_path):
    task = _task(tmp_path / "task", test=[*TEST, ("pata nahi", "unknown"), ("pata nahi", "unknown")])
    spec = DatasetSpec(path=str(task), label_map={"unknown": None})
    report = prepare(PrepareParams(task=spec), tmp_path / "out", tmp_path / "data.json")
    counts = report["task"]["test"]
    assert counts["rows_read"] == len(TEST) + 2 and counts["dropped_label_unmapped"] == 2
    assert counts["rows"] == len(TEST) == len(_read(tmp_path / "out/task/test.jsonl"))


def test_transfer_test_is_whole_and_its_texts_leave_task_and_english_train_dev(tmp_path):
    transfer_rows = [
        ("la pelicula was great", "positive"),  # also in the task test set
        ("la pelicula was great", "positive"),  # duplicate: kept
        ("   ", "neutral"),  # empty: kept
        ("que bakwas movie", "negative"),  # also in task train
        ("no se yaar", "neutral"),  # also in task dev and English train
        ("dropped by the map", "mixed"),
    ]
    _jsonl(
        tmp_path / "es/test.jsonl",
        [{"id": f"es-{i}", "text": t, "label": y} for i, (t, y) in enumerate(transfer_rows)],
    )
    es = DatasetSpec(path=str(tmp_path / "es"), label_map={"mixed": None})
    t_report = prepare_transfer("en_es", es, CleaningParams(), tmp_path / "transfer/en_es", tmp_path / "t.json")
    written = _read(tmp_path / "transfer/en_es/test.jsonl")
    assert [r["id"] for r in written] == [f"es-{i}" for i in range(5)], "only the label_map's null rows go"
    assert t_report["test"]["rows"] == 5 and t_report["test"]["dropped_label_unmapped"] == 1
    assert t_report["test"]["duplicate_kept"] == 1 and t_report["test"]["empty_kept"] == 1
    assert json.loads((tmp_path / "t.json").read_text()) == t_report

    task = _task(
        tmp_path / "task",
        train=[*TRAIN, ("QUE bakwas   movie", "negative")],
        dev=[("thik hai", "neutral"), ("no se yaar", "neutral")],
    )
    _split(tmp_path / "en", "train", [("good film", "positive"), ("no se yaar", "neutral"), ("bad film", "negative")])
    _split(tmp_path / "en", "dev", [("okay film", "neutral"), ("la pelicula was great", "positive")])
    params = PrepareParams(task=DatasetSpec(path=str(task)), english=DatasetSpec(path=str(tmp_path / "en")))
    report = prepare(params, tmp_path / "out", tmp_path / "data.json", tmp_path / "transfer")

    assert _read(tmp_path / "transfer/en_es/test.jsonl") == written, "prepare never touches a transfer set"
    train = report["task"]["train"]
    assert train["dropped_leak_in_transfer_test"] == 1 and train["rows"] == 3
    assert report["task"]["dev"]["dropped_leak_in_transfer_test"] == 1 and report["task"]["dev"]["rows"] == 1
    assert "que bakwas movie" not in {r["text"].lower() for r in _read(tmp_path / "out/task/train.jsonl")}
    assert report["english"]["train"]["dropped_leak_in_transfer_test"] == 1
    # a text in both the task test and a transfer test counts once, as a task-test leak
    assert report["english"]["dev"]["dropped_leak_in_test"] == 1
    assert report["english"]["dev"]["dropped_leak_in_transfer_test"] == 0
    joint = {r["text"] for r in _read(tmp_path / "out/joint/train.jsonl")}
    assert "no se yaar" not in joint and "good film" in joint
    # the task test split stays whole too, and the text it shares with the transfer set is reported, not removed
    assert report["task"]["test"]["rows"] == len(TEST)
    assert report["transfer"]["en_es"] == {
        "path": str(tmp_path / "transfer/en_es/test.jsonl"),
        "rows": 5,
        "duplicate_kept": 1,
        "labels": {"negative": 1, "neutral": 2, "positive": 2},
    }
    assert report["test_overlap"] == {"task": {"en_es": 1}}


def test_test_overlap_covers_every_pair_of_test_sets(tmp_path):
    task = _task(tmp_path / "task")
    for name, texts in (("a", ["bakwas", "uno", "dos"]), ("b", ["uno", "dos", "movie mast thi", "tres"])):
        _jsonl(tmp_path / f"transfer/{name}/test.jsonl", [{"text": t, "label": "positive"} for t in texts])
    (tmp_path / "transfer/.gitkeep").write_text("")
    report = prepare(
        PrepareParams(task=DatasetSpec(path=str(task))), tmp_path / "out", tmp_path / "d.json", tmp_path / "transfer"
    )
    assert report["test_overlap"] == {"task": {"a": 1, "b": 1}, "a": {"b": 2}}


def test_unmapped_transfer_label_is_one_clear_error_and_nothing_is_written(tmp_path):
    task = _task(tmp_path / "task")
    _jsonl(
        tmp_path / "transfer/ta_en/test.jsonl",
        [{"text": "padam super", "label": "positive"}, {"text": "semma mass", "label": "Mixed feelings"}],
    )
    params = PrepareParams(task=DatasetSpec(path=str(task)))
    with pytest.raises(DataError) as err:
        prepare(params, tmp_path / "out", tmp_path / "data.json", tmp_path / "transfer")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'transfer/ta_en/test.jsonl'} (transfer pair 'ta_en'): ")
    assert "label(s) 'Mixed feelings' never occur in the task's train split" in message
    assert message.endswith("map or drop them with label_map")
    assert not (tmp_path / "out").exists() and not (tmp_path / "data.json").exists()


def test_a_transfer_label_map_that_drops_everything_is_an_error(tmp_path):
    _jsonl(tmp_path / "es/test.jsonl", [{"text": "hola", "label": "mixed"}])
    spec = DatasetSpec(path=str(tmp_path / "es"), label_map={"mixed": None})
    with pytest.raises(DataError, match=r"es \[test\] \(transfer pair 'en_es'\): no rows left after label_map"):
        prepare_transfer("en_es", spec, CleaningParams(), tmp_path / "t/en_es", tmp_path / "t.json")
    assert not (tmp_path / "t/en_es").exists() and not (tmp_path / "t.json").exists()


def test_tamil_labels_are_mapped_by_meaning():
    """DravidianCodeMix `unknown state` (no sentiment) is neutral; `Mixed feelings` is none of the three: dropped."""
    params = compose(ROOT / "configs/real/sentimix_hinglish.yaml")
    label_map = params["transfer"]["ta_en"]["label_map"]
    assert label_map == {
        "Positive": "positive",
        "Negative": "negative",
        "unknown state": "neutral",
        "Mixed feelings": None,
        "not-Tamil": None,
    }
    synthetic = compose(ROOT / "configs/real/sentimix_hinglish_synthetic.yaml")
    assert synthetic["transfer"]["ta_en"]["label_map"] == label_map


# ---- the real official test files (../shared/data), through the real configs --------------------------------


def _official(shared: Path, name: str) -> list[dict]:
    """The official test file as it is on disk, read without cmmerge's loaders."""
    return _read(shared / name / "test.jsonl")


def _prepare_config(config: str, tmp_path: Path) -> dict:
    """``prepare_transfer`` for every pair, then ``prepare``, as the pipeline runs them, from the repo root."""
    params = compose(ROOT / "configs/real" / config)
    prep = from_dict(PrepareParams, params["prepare"], where=f"{config}: prepare")
    transfer = {}
    for name, spec in (params.get("transfer") or {}).items():
        spec = from_dict(DatasetSpec, spec, where=f"{config}: transfer.{name}")
        transfer[name] = prepare_transfer(
            name, spec, prep.cleaning, tmp_path / "transfer" / name, tmp_path / f"t_{name}.json"
        )
    (tmp_path / "transfer").mkdir(exist_ok=True)
    report = prepare(prep, tmp_path / "prepared", tmp_path / "data.json", tmp_path / "transfer")
    return {**report, "prepare_transfer": transfer}


@pytest.fixture(scope="module")
def real_root(tmp_path_factory, shared_data):
    """A root holding data/real/<name> as `cmmerge data get --config` writes it, from the offline mirror."""
    from cmmerge.data.fetch import datasets_named_by, get_dataset, load_registry

    root = tmp_path_factory.mktemp("real_root")
    registry = load_registry()
    names = {
        n for c in ("sentimix_hinglish.yaml", "bohra_hinglish_hate.yaml")
        for n in datasets_named_by(compose(ROOT / "configs/real" / c), registry)
    }  # fmt: skip
    for name in sorted(names - {"cpt_unlabeled"}):  # prepare reads the labelled sets only
        get_dataset(name, out=root / "data" / "real", cache=root / "cache", mirror=shared_data, registry=registry)
    return root


@pytest.fixture
def in_root(monkeypatch, real_root, shared_data):
    """Config paths (``data/real/...``) are relative to the repository root: run where they resolve."""
    monkeypatch.chdir(real_root)
    return shared_data


def test_real_sentimix_and_transfer_test_sets_keep_every_official_row(in_root, tmp_path):
    report = _prepare_config("sentimix_hinglish.yaml", tmp_path)
    hinglish = _official(in_root, "sentimix_hinglish")
    test = _read(tmp_path / "prepared/task/test.jsonl")
    assert len(hinglish) == 3000 and [r["id"] for r in test] == [r["id"] for r in hinglish]
    assert report["task"]["test"]["rows"] == 3000 and report["task"]["test"]["duplicate_kept"] == 1

    spanglish = _official(in_root, "sentimix_spanglish")
    en_es = _read(tmp_path / "transfer/en_es/test.jsonl")
    assert len(spanglish) == 1502 and [r["id"] for r in en_es] == [r["id"] for r in spanglish]
    assert report["prepare_transfer"]["en_es"]["test"]["duplicate_kept"] == 10
    assert report["transfer"]["en_es"]["duplicate_kept"] == 10

    tamil = _official(in_root, "dravidian_tamil_sentiment")
    dropped = [r for r in tamil if r["label"] in ("Mixed feelings", "not-Tamil")]
    kept = [r for r in tamil if r["label"] not in ("Mixed feelings", "not-Tamil")]
    assert (len(tamil), len(dropped)) == (1572, 181 + 49)
    ta_en = _read(tmp_path / "transfer/ta_en/test.jsonl")
    assert [r["id"] for r in ta_en] == [r["id"] for r in kept], "official rows minus exactly the null-mapped ones"
    assert report["prepare_transfer"]["ta_en"]["test"]["dropped_label_unmapped"] == len(dropped)
    assert Counter(r["label"] for r in ta_en) == {
        "positive": sum(r["label"] == "Positive" for r in tamil),
        "negative": sum(r["label"] == "Negative" for r in tamil),
        "neutral": sum(r["label"] == "unknown state" for r in tamil),
    }
    # what prepare reports about the test sets, and the train/dev leaks it removed
    assert {k: v["rows"] for k, v in report["transfer"].items()} == {"en_es": 1502, "ta_en": 1342}
    assert report["test_overlap"] == {"task": {"en_es": 0, "ta_en": 0}, "en_es": {"ta_en": 0}}
    assert report["task"]["train"]["dropped_leak_in_test"] == 14 and report["task"]["dev"]["dropped_leak_in_test"] == 2


def test_real_bohra_test_set_keeps_every_official_row(in_root, tmp_path):
    report = _prepare_config("bohra_hinglish_hate.yaml", tmp_path)
    official = _official(in_root, "bohra_hinglish_hate")
    test = _read(tmp_path / "prepared/task/test.jsonl")
    assert len(official) == 458 and [r["id"] for r in test] == [r["id"] for r in official]
    assert report["transfer"] == {} and report["test_overlap"] == {}


def test_only_configured_transfer_pairs_are_read(tmp_path):
    """DVC never deletes data/transfer/<pair> of a dropped pair: prepare and corpus ignore it when given the pairs."""
    from cmmerge.data.corpus import evaluation_texts
    from cmmerge.data.transfer import transfer_test_files

    _jsonl(tmp_path / "transfer/stale/test.jsonl", [{"id": "s0", "text": "stale pair text", "label": "neutral"}])
    task = _task(tmp_path / "task", train=[*TRAIN, ("stale pair text", "neutral")])
    params = PrepareParams(task=DatasetSpec(path=str(task)))
    configured = prepare(params, tmp_path / "a", tmp_path / "a.json", tmp_path / "transfer", pairs=[])
    assert configured["task"]["train"]["dropped_leak_in_transfer_test"] == 0 and configured["transfer"] == {}
    every = prepare(params, tmp_path / "b", tmp_path / "b.json", tmp_path / "transfer")
    assert every["task"]["train"]["dropped_leak_in_transfer_test"] == 1
    assert "stale pair text" not in evaluation_texts(tmp_path / "a", tmp_path / "transfer", pairs=[])
    assert "stale pair text" in evaluation_texts(tmp_path / "a", tmp_path / "transfer")
    with pytest.raises(DataError, match=r"no test set of transfer pair\(s\) ta_en \(run prepare_transfer\)"):
        transfer_test_files(tmp_path / "transfer", ["ta_en"])
