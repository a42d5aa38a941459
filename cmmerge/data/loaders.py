"""Loaders for the formats researchers have, all returning plain rows ``{"id", "text", "label", ...}``.

Supported: JSONL / JSON lists, CSV / TSV (configurable text and label fields), SentiMix-style CoNLL
(a ``meta`` line per sentence, then ``token<TAB>lang`` lines; word-level language tags kept as
``tokens`` / ``langs``), GLUECoS-style tagged blocks (``token<TAB>tag`` lines, a blank line between
sentences, no labels: for language-ID training data), Hugging Face ``datasets`` (a hub id, a local
data folder through ``load_dataset``, or a ``save_to_disk`` folder through ``load_from_disk``),
parallel text (two fields of one JSONL/CSV/TSV file) and plain-text corpora, one sentence per line.
Every problem names the file (and line) and what was expected.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cmmerge.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
# File names that count as a split in a data folder (``validation`` is the Hugging Face name for dev).
SPLIT_ALIASES = {"train": ("train",), "dev": ("dev", "validation", "valid", "val"), "test": ("test",)}
SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".conll": "conll",
    ".txt": "conll",  # SentiMix ships CoNLL as .txt; a .txt without 'meta' lines is read as tagged blocks
}
FORMATS = ("jsonl", "json", "csv", "tsv", "conll", "hf")


@dataclass
class DatasetSpec:
    """Where a labelled data set lives and which fields hold text and label.

    ``path`` is a folder holding ``train``/``dev``/``test`` files (any supported suffix), a single
    file (used for every split asked of it), a ``save_to_disk`` folder, or ``hf:<hub id or folder>``
    for ``datasets.load_dataset``.
    """

    path: str
    text_field: str = "text"
    label_field: str = "label"
    format: str | None = None  # jsonl | json | csv | tsv | conll | hf; None = from the file suffix
    id_field: str = "id"
    # rename label strings (e.g. "Positive" -> "positive"); a null value drops rows with that label
    label_map: dict[str, str | None] = field(default_factory=dict)
    # our split name -> the source's split (file) name, e.g. {train: test} when a set ships no train split
    splits: dict[str, str] = field(default_factory=dict)

    def validate(self, where: str) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise DataError(f"{where}.format must be one of {', '.join(FORMATS)}; got {self.format!r}")
        for ours, theirs in self.splits.items():
            if ours not in SPLITS:
                raise DataError(f"{where}.splits: key {ours!r} is not a split; expected some of {', '.join(SPLITS)}")
            if not isinstance(theirs, str) or not theirs.strip():
                raise DataError(f"{where}.splits.{ours} must name the source split to read, got {theirs!r}")

    def source_split(self, split: str) -> str:
        """The split (file) name to read for our ``split``."""
        return self.splits.get(split, split)


def split_file(spec: DatasetSpec, split: str) -> Path | None:
    """The file holding ``split`` of a folder spec, or None when the folder has no such split."""
    root = Path(spec.path)
    if root.is_file():
        return root
    if not root.is_dir():
        raise DataError(f"{spec.path}: data folder or file not found")
    for alias in SPLIT_ALIASES.get(split, (split,)):
        for suffix in SUFFIX_FORMATS:
            cand = root / f"{alias}{suffix}"
            if cand.is_file():
                return cand
    return None


def load_split(
    spec: DatasetSpec, split: str, required: bool = True, counts: Counter | None = None
) -> list[dict] | None:
    """Rows of one split: ``id`` (string), ``text``, ``label`` (string), plus ``tokens``/``langs`` if tagged.

    ``spec.splits`` redirects a split to another source split. Tokens the CoNLL reader skips (empty or
    whitespace-only) are added to ``counts`` as ``dropped_empty_token``, so no drop goes unreported.
    """
    if split in spec.splits:
        # the redirected split is read under its source name, but errors say which of ours it serves
        source = spec.source_split(split)
        log.info("%s: reading source split '%s' as our '%s'", spec.path, source, split)
        split = source
    if spec.format == "hf" or spec.path.startswith("hf:"):
        return _load_hf(spec, split, required)
    root = Path(spec.path)
    if _is_saved_dataset(root):
        return _load_hf(spec, split, required)
    path = split_file(spec, split)
    if path is None:
        if required:
            found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
            raise DataError(
                f"{spec.path}: no '{split}' file (looked for {'/'.join(SPLIT_ALIASES.get(split, (split,)))} "
                f"with suffix {', '.join(SUFFIX_FORMATS)}; folder has {', '.join(found) or 'nothing'})"
            )
        return None
    fmt = spec.format or SUFFIX_FORMATS.get(path.suffix)
    if fmt is None:
        raise DataError(f"{path}: cannot tell the format from the suffix; set format: jsonl|json|csv|tsv|conll")
    if fmt == "conll":
        raw = _read_conll(path, counts)
    else:
        raw = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "tsv": _read_tsv}[fmt](path)
    return _normalise(raw, spec, path)


def _normalise(raw: list[dict], spec: DatasetSpec, path: Path | str) -> list[dict]:
    if not raw:
        raise DataError(f"{path}: file has no rows")
    rows = []
    for i, rec in enumerate(raw):
        for field_name, role in ((spec.text_field, "text"), (spec.label_field, "label")):
            if field_name not in rec:
                keys = ", ".join(sorted(map(str, rec))) or "none"
                raise DataError(
                    f"{path}: row {i + 1} has no {role} field '{field_name}' (fields: {keys}); "
                    f"set {role}_field to the right name"
                )
        text, label = rec[spec.text_field], rec[spec.label_field]
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise DataError(f"{path}: row {i + 1}: text field '{spec.text_field}' is {type(text).__name__}, not text")
        if label is None or (isinstance(label, str) and not label.strip()):
            raise DataError(f"{path}: row {i + 1}: empty label in field '{spec.label_field}'")
        if isinstance(label, dict | list | tuple | set) or (isinstance(label, float) and label != label):
            # str() of a mapping or list would silently become a class of its own
            raise DataError(
                f"{path}: row {i + 1}: label field '{spec.label_field}' holds {_what(label)}, not a class name; "
                "labels must be strings or numbers"
            )
        label = str(label).strip()
        row = {"id": str(rec.get(spec.id_field, i)), "text": text, "label": label}
        if "tokens" in rec and "langs" in rec:
            row["tokens"], row["langs"] = list(rec["tokens"]), list(rec["langs"])
        rows.append(row)
    return rows


def _what(value: object) -> str:
    text = repr(value)
    return f"a {type(value).__name__} ({text[:40] + '…' if len(text) > 40 else text})"


def _open_text(path: Path):
    try:
        # utf-8-sig: a byte-order mark (Excel writes one) must not become part of the first column's name
        return open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None


def _decode_guard(path: Path, fn):
    try:
        return fn()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not valid UTF-8 (byte {exc.object[exc.start]:#x} at offset {exc.start}); "
            "re-encode the file as UTF-8"
        ) from None


def _read_jsonl(path: Path) -> list[dict]:
    def read():
        rows = []
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: not a JSON object ({exc.msg})") from None
                if not isinstance(rec, dict):
                    raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
                rows.append(rec)
        return rows

    return _decode_guard(path, read)


def _read_json(path: Path) -> list[dict]:
    def read():
        with _open_text(path) as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
        return data

    return _decode_guard(path, read)


def _read_delimited(path: Path, delimiter: str) -> list[dict]:
    def read():
        with _open_text(path) as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            if not reader.fieldnames:
                raise DataError(f"{path}: empty file (expected a header row)")
            rows = []
            for lineno, rec in enumerate(reader, 2):
                if None in rec:
                    raise DataError(
                        f"{path}:{lineno}: more fields than the header's {len(reader.fieldnames)}; "
                        "quote fields that contain the delimiter"
                    )
                rows.append(rec)
            return rows

    return _decode_guard(path, read)


def _read_csv(path: Path) -> list[dict]:
    return _read_delimited(path, ",")


def _read_tsv(path: Path) -> list[dict]:
    return _read_delimited(path, "\t")


def _is_meta(parts: list[str]) -> bool:
    """A sentence header ``meta<TAB>id[<TAB>label]``, told apart from the word "meta" (Spanish for goal),
    which SentiMix Spanglish has as a token line ``meta<TAB>lang2``: a header's id is numeric or a label follows."""
    return parts[0] == "meta" and (len(parts) >= 3 or (len(parts) == 2 and parts[1].strip().isdigit()))


def _read_conll(path: Path, counts: Counter | None = None) -> list[dict]:
    """SentiMix CoNLL: ``meta<TAB>id[<TAB>label]`` starts a sentence, then ``token<TAB>lang`` lines."""

    def read():
        rows: list[dict] = []
        cur: dict | None = None
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                parts = line.split("\t")
                if _is_meta(parts):
                    if len(parts) < 2 or not parts[1].strip():
                        raise DataError(f"{path}:{lineno}: meta line without a sentence id")
                    cur = {"id": parts[1].strip(), "tokens": [], "langs": []}
                    if len(parts) > 2 and parts[2].strip():
                        cur["label"] = parts[2].strip()
                    rows.append(cur)
                    continue
                if cur is None:
                    raise DataError(f"{path}:{lineno}: token line before the first 'meta' line")
                if len(parts) != 2:
                    raise DataError(
                        f"{path}:{lineno}: expected 'token<TAB>lang', got {len(parts)} tab-separated field(s)"
                    )
                token, lang = parts[0].strip(), parts[1].strip()
                if token:
                    cur["tokens"].append(token)
                    cur["langs"].append(lang)
                elif counts is not None:
                    # the SentiMix release has lone non-breaking spaces as tokens: not words, but counted
                    counts["dropped_empty_token"] += 1
        for row in rows:
            row["text"] = " ".join(row["tokens"])
        return rows

    return _decode_guard(path, read)


def _is_saved_dataset(root: Path) -> bool:
    """A ``save_to_disk`` folder (read with ``load_from_disk``, not ``load_dataset``)."""
    return root.is_dir() and ((root / "dataset_dict.json").is_file() or (root / "dataset_info.json").is_file())


def _load_hf(spec: DatasetSpec, split: str, required: bool) -> list[dict] | None:
    import datasets

    target = spec.path[3:] if spec.path.startswith("hf:") else spec.path
    names = SPLIT_ALIASES.get(split, (split,))
    try:
        if _is_saved_dataset(Path(target)):
            ds = datasets.load_from_disk(target)
        elif Path(target).is_dir():
            ds = _load_hf_folder(Path(target), datasets)
        else:
            ds = datasets.load_dataset(target)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        raise DataError(f"{spec.path}: cannot load with datasets ({str(exc).splitlines()[0]})") from None
    if isinstance(ds, datasets.Dataset):
        part = ds
    else:
        part = next((ds[n] for n in names if n in ds), None)
        if part is None:
            if required:
                raise DataError(f"{spec.path}: no '{split}' split (has {', '.join(ds.keys())})")
            return None
    label_feature = part.features.get(spec.label_field)
    rows = part.to_list()
    if isinstance(label_feature, datasets.ClassLabel):
        for rec in rows:  # keep label strings, as every other loader does
            rec[spec.label_field] = label_feature.int2str(rec[spec.label_field])
    return _normalise(rows, spec, f"{spec.path} [{split}]")


def _load_hf_folder(root: Path, datasets):
    """``load_dataset`` on the split files at the top of a local folder, named explicitly: letting
    ``datasets`` infer them would also pick up unrelated files (e.g. a ``raw/test.txt`` original)."""
    files, builders = {}, set()
    for split in SPLITS:
        path = split_file(DatasetSpec(path=str(root)), split)
        if path is not None:
            files["validation" if split == "dev" else split] = str(path)
            builders.add(path.suffix)
    if not files:
        raise DataError(f"{root}: no train/dev/test files for datasets.load_dataset")
    if len(builders) > 1:
        raise DataError(f"{root}: split files mix formats ({', '.join(sorted(builders))}); use one")
    suffix = builders.pop()
    if suffix in (".jsonl", ".json"):
        return datasets.load_dataset("json", data_files=files)
    if suffix in (".csv", ".tsv"):
        return datasets.load_dataset("csv", data_files=files, delimiter="\t" if suffix == ".tsv" else ",")
    raise DataError(f"{root}: datasets cannot read {suffix} split files; use format: conll")


def load_corpus(path: str | Path) -> list[str]:
    """A plain-text corpus, one sentence per line (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: corpus file not found")

    def read():
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]

    lines = _decode_guard(path, read)
    if not lines:
        raise DataError(f"{path}: corpus file is empty")
    return lines


def load_tagged(path: str | Path) -> list[dict]:
    """GLUECoS-style word-tagged text: ``token<TAB>tag[<TAB>...]`` lines, sentences separated by blank lines.

    Returns ``{"tokens", "langs"}`` rows (the second column is the language tag). SentiMix CoNLL
    (with ``meta`` lines) is read too, so either kind of tagged file can train a language identifier.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: tagged file not found")

    def read():
        rows: list[dict] = []
        cur: dict = {"tokens": [], "langs": []}
        with open(path, encoding="utf-8", newline="") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                parts = line.split("\t")
                if not line.strip() or _is_meta(parts):
                    if cur["tokens"]:
                        rows.append(cur)
                    cur = {"tokens": [], "langs": []}
                    continue
                if len(parts) < 2:
                    raise DataError(f"{path}:{lineno}: expected 'token<TAB>tag', got {line[:40]!r}")
                token = parts[0].strip()
                if token:
                    cur["tokens"].append(token)
                    cur["langs"].append(parts[1].strip())
        if cur["tokens"]:
            rows.append(cur)
        return rows

    rows = _decode_guard(path, read)
    if not rows:
        raise DataError(f"{path}: no tagged sentences")
    return rows


def load_parallel(path: str | Path, source_field: str, target_field: str) -> list[tuple[str, str]]:
    """Sentence pairs from the two fields of a JSONL/JSON/CSV/TSV file (e.g. Hinglish-TOP ``en`` / ``cs``)."""
    path = Path(path)
    fmt = SUFFIX_FORMATS.get(path.suffix)
    if fmt not in ("jsonl", "json", "csv", "tsv"):
        raise DataError(f"{path}: parallel data must be .jsonl, .json, .csv or .tsv")
    if not path.is_file():
        raise DataError(f"{path}: parallel data file not found")
    raw = {"jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv, "tsv": _read_tsv}[fmt](path)
    if not raw:
        raise DataError(f"{path}: file has no rows")
    pairs = []
    for i, rec in enumerate(raw, 1):
        for name in (source_field, target_field):
            if not isinstance(rec.get(name), str):
                raise DataError(f"{path}: row {i} has no text field '{name}' (fields: {', '.join(sorted(rec))})")
        pairs.append((rec[source_field].strip(), rec[target_field].strip()))
    return pairs
