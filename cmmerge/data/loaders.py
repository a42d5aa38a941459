"""Loaders for the formats researchers have, all returning plain rows ``{"id", "text", "label", ...}``.

Supported: JSONL / JSON lists, CSV / TSV (configurable text and label fields), SentiMix-style CoNLL
(a ``meta`` line per sentence, then ``token<TAB>lang`` lines; word-level language tags kept as
``tokens`` / ``langs``), Hugging Face ``datasets`` (a hub id, a local data folder through
``load_dataset``, or a ``save_to_disk`` folder through ``load_from_disk``), and plain-text corpora,
one sentence per line. Every problem names the file (and line) and what was expected.
"""

from __future__ import annotations

import csv
import json
import logging
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
    ".txt": "conll",
}


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

    def validate(self, where: str) -> None:
        if self.format is not None and self.format not in ("jsonl", "json", "csv", "tsv", "conll", "hf"):
            raise DataError(f"{where}.format must be one of jsonl, json, csv, tsv, conll, hf; got {self.format!r}")


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


def load_split(spec: DatasetSpec, split: str, required: bool = True) -> list[dict] | None:
    """Rows of one split: ``id`` (string), ``text``, ``label`` (string), plus ``tokens``/``langs`` if tagged."""
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
    raw = {
        "jsonl": _read_jsonl,
        "json": _read_json,
        "csv": _read_csv,
        "tsv": _read_tsv,
        "conll": _read_conll,
    }[fmt](path)
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
        label = str(label).strip()
        row = {"id": str(rec.get(spec.id_field, i)), "text": text, "label": label}
        if "tokens" in rec and "langs" in rec:
            row["tokens"], row["langs"] = list(rec["tokens"]), list(rec["langs"])
        rows.append(row)
    return rows


def _open_text(path: Path):
    try:
        return open(path, encoding="utf-8", newline="")
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


def _read_conll(path: Path) -> list[dict]:
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
                if parts[0] == "meta":
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
        ds = datasets.load_from_disk(target) if _is_saved_dataset(Path(target)) else datasets.load_dataset(target)
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
