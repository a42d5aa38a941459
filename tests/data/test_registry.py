"""The data registry: every shared data set rebuilt from its verified originals, and every way that can fail.

The reproduction tests get each registered data set from the offline mirror (``../shared/data`` or
``$CMMERGE_SHARED_DATA``) and compare the converted files with the shared copy row for row; they skip, saying
where they looked, when the mirror is absent. The download path (urllib against the registry URL) is exercised
against a local HTTP server on 127.0.0.1, because this machine has no internet. The bad-input tests use a tiny
synthetic data set, so they run everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cmmerge.cli import main
from cmmerge.data.converters import repair_mojibake, stratified_group_split
from cmmerge.data.fetch import BASE_URL_ENV, GITHUB_RAW, MIRROR_ENV, Entry, Source, get_dataset, load_registry
from cmmerge.errors import DataError

REGISTRY = load_registry()
ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The offline mirror: ``<repo>/../shared/data``, or ``$CMMERGE_SHARED_DATA`` (as in tests/data/conftest.py)."""
    env = os.environ.get("CMMERGE_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------------------------
# helpers


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # the test output stays readable
        pass


class _CutOff(_Quiet):
    """Announces the whole file, sends half of it and hangs up: a download interrupted mid-way."""

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def serve(monkeypatch) -> Iterator:
    """``serve(root, handler)`` starts an HTTP server on 127.0.0.1 for ``root`` and points downloads at it."""
    servers = []

    def start(root: Path, handler: type = _Quiet) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setenv(BASE_URL_ENV, base)
        return base

    monkeypatch.delenv(MIRROR_ENV, raising=False)
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _publish(entry: Entry, originals: Path, root: Path) -> None:
    """Lay the originals out as raw.githubusercontent.com does: ``<repository>/<commit>/<path>``."""
    for source in entry.sources:
        target = root / source.repository / source.commit / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(originals / source.file, target)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rows(path: Path) -> list:
    """A data file as rows: JSON objects for .jsonl, lines otherwise (a CoNLL token, an id, a sentence)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in lines if line]
    return lines


TINY_FILES = {
    "mapping.txt": "0\tnot-hate\n1\thate\n",
    "train_text.txt": "a tweet\nanother tweet\n",
    "train_labels.txt": "0\n1\n",
    "val_text.txt": "a dev tweet\n",
    "val_labels.txt": "1\n",
    "test_text.txt": "a test tweet\n",
    "test_labels.txt": "0\n",
}


def _tiny(tmp_path: Path, files: dict[str, str] = TINY_FILES) -> tuple[dict[str, Entry], Path]:
    """A registry with one small TweetEval-shaped data set ``tiny``, and a mirror holding its originals."""
    mirror = tmp_path / "mirror"
    raw = mirror / "tiny" / "raw"
    raw.mkdir(parents=True)
    sources = []
    for name, text in files.items():
        (raw / name).write_text(text, encoding="utf-8")
        data = text.encode("utf-8")
        path = f"datasets/tiny/{name}"
        sources.append(
            Source(
                file=name,
                repository="example/tiny",
                commit="0" * 40,
                path=path,
                url=f"{GITHUB_RAW}/example/tiny/{'0' * 40}/{urllib.parse.quote(path)}",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
        )
    entry = Entry(
        name="tiny",
        description="test",
        converter="tweeteval",
        outputs=("train.jsonl", "dev.jsonl", "test.jsonl"),
        licence="test",
        citation="test",
        sources=tuple(sources),
        text="name: tiny\n",
    )
    return {"tiny": entry}, mirror


def _no_leftovers(out: Path) -> None:
    assert not [p.name for p in out.glob(".*tmp-*")], "a temporary data set folder was left behind"


# ---------------------------------------------------------------------------------------------------------------
# the registry itself


def test_registry_entries_are_complete():
    assert REGISTRY, "no registry entries found"
    for entry in REGISTRY.values():
        assert entry.sources and entry.outputs and entry.licence and entry.citation, entry.name
        for req in entry.requires:
            assert req in REGISTRY, f"{entry.name} requires unknown {req}"
        for source in entry.sources:
            assert len(source.sha256) == 64 and source.size > 0, (entry.name, source.file)
            quoted = urllib.parse.quote(source.path)
            assert source.url == f"{GITHUB_RAW}/{source.repository}/{source.commit}/{quoted}", (entry.name, source.file)
            assert len(source.commit) == 40


def test_registry_covers_every_shared_data_set():
    root = shared_data_dir()
    if not (root / "README.md").is_file():
        pytest.skip(f"shared data sets not found at {root} (set CMMERGE_SHARED_DATA to their folder)")
    shared = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert sorted(REGISTRY) == shared


def test_mojibake_repair_and_grouped_split():
    assert repair_mojibake("ðŸ˜…") == "😅"
    assert repair_mojibake("â\x9d¤") == "❤"  # 0x9D is undefined in Windows-1252 and maps to itself
    assert repair_mojibake("â\x80\x94") == "â\x80\x94"  # U+0080 is not how Windows-1252 shows byte 0x80
    assert repair_mojibake("café") == "café"
    rows = [{"id": str(i), "text": f"text {i % 40}", "label": "ab"[i % 2]} for i in range(200)]
    splits = stratified_group_split(rows)
    assert sum(map(len, splits.values())) == 200
    texts = {split: {r["text"].lower() for r in rs} for split, rs in splits.items()}
    assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]


# ---------------------------------------------------------------------------------------------------------------
# every data set, from the mirror, row for row


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_get_from_mirror_reproduces_shared_copy(name, tmp_path, monkeypatch):
    mirror = shared_data_dir()
    if not (mirror / name / "raw").is_dir():
        pytest.skip(f"offline mirror {mirror / name / 'raw'} not found (set CMMERGE_SHARED_DATA to the shared data)")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    folder = get_dataset(name, out=tmp_path / "out", cache=tmp_path / "cache")
    assert folder == tmp_path / "out" / name
    for output in REGISTRY[name].outputs:
        got, want = _rows(folder / output), _rows(mirror / name / output)
        for i, (a, b) in enumerate(zip(got, want, strict=False)):
            assert a == b, f"{name}/{output}: row {i + 1} differs:\n  converted {a!r}\n  shared    {b!r}"
        assert len(got) == len(want), f"{name}/{output}: {len(got)} rows converted, {len(want)} shared"
        assert (folder / output).read_bytes() == (mirror / name / output).read_bytes(), f"{name}/{output}: bytes"
    for source in REGISTRY[name].sources:
        assert (folder / "raw" / source.file).read_bytes() == (mirror / name / "raw" / source.file).read_bytes()
    assert not (tmp_path / "cache").exists(), "originals from the mirror are not copied into the cache"
    _no_leftovers(tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------------
# the real download path, against a local server


def test_get_downloads_from_registry_url(tmp_path, serve):
    name = "bohra_hinglish_hate"
    mirror = shared_data_dir()
    if not (mirror / name / "raw").is_dir():
        pytest.skip(f"originals of {name} not found at {mirror / name / 'raw'} to serve them locally")
    entry = REGISTRY[name]
    _publish(entry, mirror / name / "raw", tmp_path / "www")
    serve(tmp_path / "www")
    cache = tmp_path / "cache"
    folder = get_dataset(name, out=tmp_path / "out", cache=cache)
    for output in entry.outputs:
        assert _rows(folder / output) == _rows(mirror / name / output)
    cached = cache / name / "raw" / entry.sources[0].file
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == entry.sources[0].sha256
    # a second get uses the cache: it works with the server gone
    shutil.rmtree(tmp_path / "www")
    assert get_dataset(name, out=tmp_path / "out2", cache=cache).is_dir()


def test_get_downloads_tiny_set_and_replaces_damaged_cache(tmp_path, serve):
    registry, mirror = _tiny(tmp_path)
    _publish(registry["tiny"], mirror / "tiny" / "raw", tmp_path / "www")
    serve(tmp_path / "www")
    cache = tmp_path / "cache"
    folder = get_dataset("tiny", out=tmp_path / "out", cache=cache, registry=registry)
    assert [r["label"] for r in _rows(folder / "train.jsonl")] == ["not-hate", "hate"]
    (cache / "tiny" / "raw" / "train_text.txt").write_text("damaged\n", encoding="utf-8")
    get_dataset("tiny", out=tmp_path / "out", cache=cache, registry=registry)
    assert (cache / "tiny" / "raw" / "train_text.txt").read_text(encoding="utf-8") == TINY_FILES["train_text.txt"]


# ---------------------------------------------------------------------------------------------------------------
# bad input: one clear line, nothing half-written, an earlier good copy kept


def test_checksum_mismatch_on_download(tmp_path, serve):
    registry, mirror = _tiny(tmp_path)
    _publish(registry["tiny"], mirror / "tiny" / "raw", tmp_path / "www")
    changed = next((tmp_path / "www").rglob("train_text.txt"))
    changed.write_text("a tweeT\nanother tweet\n", encoding="utf-8")  # same size, other bytes
    serve(tmp_path / "www")
    with pytest.raises(DataError, match=r"data set tiny: train_text.txt .*\(checksum mismatch\); .*registry/tiny.yaml"):
        get_dataset("tiny", out=tmp_path / "out", cache=tmp_path / "cache", registry=registry)
    assert not (tmp_path / "cache" / "tiny" / "raw" / "train_text.txt").exists()
    assert not list((tmp_path / "cache" / "tiny" / "raw").glob(".*part*"))
    assert not (tmp_path / "out" / "tiny").exists()


def test_checksum_mismatch_in_mirror_keeps_earlier_copy(tmp_path):
    registry, mirror = _tiny(tmp_path)
    out = tmp_path / "out"
    folder = get_dataset("tiny", out=out, cache=tmp_path / "cache", mirror=mirror, registry=registry)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    (mirror / "tiny" / "raw" / "test_labels.txt").write_text("1\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        get_dataset("tiny", out=out, cache=tmp_path / "cache", mirror=mirror, registry=registry)
    message = str(err.value)
    assert "\n" not in message and "tiny" in message and "test_labels.txt" in message and "checksum mismatch" in message
    assert "replace" in message  # what to do
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    _no_leftovers(out)


def test_mirror_missing_a_file(tmp_path):
    registry, mirror = _tiny(tmp_path)
    (mirror / "tiny" / "raw" / "val_text.txt").unlink()
    with pytest.raises(DataError, match=r"data set tiny: the mirror lacks .*val_text.txt; copy the original"):
        get_dataset("tiny", out=tmp_path / "out", cache=tmp_path / "cache", mirror=mirror, registry=registry)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_partial_download_is_removed(tmp_path, serve):
    registry, mirror = _tiny(tmp_path)
    _publish(registry["tiny"], mirror / "tiny" / "raw", tmp_path / "www")
    serve(tmp_path / "www", _CutOff)
    with pytest.raises(DataError, match=r"data set tiny: download of mapping.txt .* cut off after \d+ of \d+ bytes"):
        get_dataset("tiny", out=tmp_path / "out", cache=tmp_path / "cache", registry=registry)
    raw = tmp_path / "cache" / "tiny" / "raw"
    assert not list(raw.iterdir()), "the partial download was left in the cache"
    assert not (tmp_path / "out" / "tiny").exists()


def test_no_network_and_no_mirror(tmp_path, monkeypatch):
    registry, _ = _tiny(tmp_path)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(DataError, match=rf"data set tiny: cannot download mapping.txt .*set {MIRROR_ENV}"):
        get_dataset("tiny", out=tmp_path / "out", cache=tmp_path / "cache", registry=registry)
    assert not (tmp_path / "out" / "tiny").exists()


def test_converted_split_would_be_empty(tmp_path):
    registry, mirror = _tiny(tmp_path, {**TINY_FILES, "test_text.txt": "   \n", "test_labels.txt": "0\n"})
    with pytest.raises(DataError, match=r"data set tiny: converted test.jsonl would be empty"):
        get_dataset("tiny", out=tmp_path / "out", cache=tmp_path / "cache", mirror=mirror, registry=registry)
    assert not (tmp_path / "out" / "tiny").exists()
    _no_leftovers(tmp_path / "out")


def test_cli_unknown_name_and_no_network(tmp_path, monkeypatch, capsys):
    assert main(["data", "get", "no_such_set", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and "unknown data set 'no_such_set'" in err[0] and "cmmerge data list" in err[0]

    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{_closed_port()}")
    args = ["data", "get", "bohra_hinglish_hate", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c")]
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cmmerge: error:")]
    assert len(err) == 1 and "bohra_hinglish_hate" in err[0] and "hate_speech.tsv" in err[0] and MIRROR_ENV in err[0]
    assert not (tmp_path / "out" / "bohra_hinglish_hate").exists()


def test_cli_list(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in REGISTRY:
        assert name in out


def test_registry_entry_mismatch_is_one_line(tmp_path):
    """A registry whose size disagrees with the mirror (e.g. an edited YAML) fails before converting."""
    registry, mirror = _tiny(tmp_path)
    entry = registry["tiny"]
    bad = replace(entry, sources=(replace(entry.sources[0], size=entry.sources[0].size + 1), *entry.sources[1:]))
    with pytest.raises(DataError, match=r"mapping.txt from mirror .* registry says \d+ \(partial or different file\)"):
        get_dataset("tiny", out=tmp_path / "out", cache=tmp_path / "cache", mirror=mirror, registry={"tiny": bad})


def test_a_config_names_the_data_sets_it_reads():
    from cmmerge.data.fetch import datasets_named_by, load_registry
    from cmmerge.overlay import compose

    root = Path(__file__).resolve().parents[2]
    registry = load_registry()
    sentimix = datasets_named_by(compose(root / "configs/real/sentimix_hinglish.yaml"), registry)
    assert sentimix == [
        "sentimix_hinglish",
        "tweeteval_en_sentiment",
        "sentimix_spanglish",
        "dravidian_tamil_sentiment",
        "cpt_unlabeled",
    ]
    bohra = datasets_named_by(compose(root / "configs/real/bohra_hinglish_hate.yaml"), registry)
    assert bohra == ["bohra_hinglish_hate", "tweeteval_en_hate", "cpt_unlabeled"]
    # no real config reads outside data/real (the folder `cmmerge data get` writes)
    for config in (root / "configs" / "real").glob("[!_]*.yaml"):
        text = config.read_text()
        assert "../shared" not in text, f"{config} reads ../shared: name a registered data set under data/real/"
    with pytest.raises(DataError, match="nope"):
        datasets_named_by({"prepare": {"task": {"path": "data/real/nope"}}}, registry)
