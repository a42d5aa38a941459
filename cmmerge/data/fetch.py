"""The data registry: fetch a data set's public originals, verify their sha256, convert, write the folder.

Every real experiment reads ``<root>/<name>/`` (the shared copy is ``../shared/data``), which exists only on the
team's machines. A registry entry (``cmmerge/data/registry/<name>.yaml``, shipped with the package) names where
each original file is published (repository, pinned commit, path, and the raw URL that follows from them), its
sha256 and size, the licence and citation, and the converter (:mod:`cmmerge.data.converters`) that turns the
originals into the folder. ``cmmerge data get NAME`` then rebuilds the folder anywhere:

1. each original is taken from the cache (``~/.cache/cmmerge/data/<name>/raw/``, ``--cache`` or
   ``$CMMERGE_DATA_CACHE``) if its sha256 matches; otherwise from ``$CMMERGE_DATA_MIRROR/<name>/raw/`` when that
   is set (an offline copy such as ``../shared/data``), else downloaded with urllib from the registry URL
   (``$CMMERGE_DATA_URL_BASE`` replaces ``https://raw.githubusercontent.com`` for a private mirror server);
2. every file is checked against the registry's size and sha256 before it is used or cached: a changed upstream
   file, a cut-off download or a damaged mirror stops the command with one line naming the file;
3. the converter runs on the verified originals; an output it does not produce, or produces empty, is an error;
4. the folder (outputs, ``raw/`` with the originals, ``registry.yaml``) is written with
   :func:`cmmerge.fsutil.atomic_dir`: it appears complete or not at all, and a failed run leaves an earlier good
   copy as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from cmmerge import yaml12
from cmmerge.checksums import sha256_file
from cmmerge.data.converters import ConvertContext, get_converter
from cmmerge.errors import DataError
from cmmerge.fsutil import atomic_dir

log = logging.getLogger(__name__)

REGISTRY_DIR = Path(__file__).with_name("registry")
MIRROR_ENV = "CMMERGE_DATA_MIRROR"
CACHE_ENV = "CMMERGE_DATA_CACHE"
BASE_URL_ENV = "CMMERGE_DATA_URL_BASE"
GITHUB_RAW = "https://raw.githubusercontent.com"
DEFAULT_OUT = Path("data/real")
TIMEOUT_S = 60


@dataclass(frozen=True)
class Source:
    """One original file: where it is published and what its bytes must hash to."""

    file: str  # name under raw/
    repository: str
    commit: str
    path: str
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Entry:
    """A registered data set (one ``registry/<name>.yaml``)."""

    name: str
    description: str
    converter: str
    outputs: tuple[str, ...]
    licence: str
    citation: str
    sources: tuple[Source, ...]
    requires: tuple[str, ...] = ()
    text: str = ""  # the YAML as written, copied into the data set folder as provenance


def _entry_from_yaml(path: Path) -> Entry:
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml12.load(text)
        sources = tuple(Source(**{k: s[k] for k in Source.__dataclass_fields__}) for s in raw["sources"])
        return Entry(
            name=raw["name"],
            description=raw["description"],
            converter=raw["converter"],
            outputs=tuple(raw["outputs"]),
            licence=raw["licence"],
            citation=raw["citation"],
            sources=sources,
            requires=tuple(raw.get("requires") or ()),
            text=text,
        )
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a valid registry entry ({type(exc).__name__}: {exc})") from None


def load_registry(directory: str | os.PathLike | None = None) -> dict[str, Entry]:
    """All registry entries, by name (the file stem must equal the ``name:`` inside)."""
    directory = Path(directory) if directory is not None else REGISTRY_DIR
    entries = {}
    for path in sorted(directory.glob("*.yaml")):
        entry = _entry_from_yaml(path)
        if entry.name != path.stem:
            raise DataError(f"{path}: name {entry.name!r} differs from the file name; rename one of them")
        entries[entry.name] = entry
    return entries


def lookup(name: str, registry: dict[str, Entry]) -> Entry:
    if name not in registry:
        raise DataError(
            f"unknown data set {name!r}; registered: {', '.join(sorted(registry))} (`cmmerge data list` describes them)"
        )
    return registry[name]


def default_cache() -> Path:
    """``$CMMERGE_DATA_CACHE``, else ``$XDG_CACHE_HOME/cmmerge/data``, else ``~/.cache/cmmerge/data``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cmmerge" / "data"


def source_url(source: Source) -> str:
    """The registry URL, or the same repository/commit/path under ``$CMMERGE_DATA_URL_BASE``."""
    base = os.environ.get(BASE_URL_ENV)
    if base and source.url.startswith(GITHUB_RAW + "/"):
        return base.rstrip("/") + source.url[len(GITHUB_RAW) :]
    return source.url


def _matches(path: Path, source: Source) -> bool:
    return path.is_file() and path.stat().st_size == source.size and sha256_file(path) == source.sha256


def _check(path: Path, source: Source, entry: Entry, origin: str, what_to_do: str) -> None:
    """Raise one clear line if ``path`` is not the registered original."""
    size = path.stat().st_size
    if size != source.size:
        raise DataError(
            f"data set {entry.name}: {source.file} from {origin} has {size} bytes, the registry says {source.size} "
            f"(partial or different file); {what_to_do}"
        )
    digest = sha256_file(path)
    if digest != source.sha256:
        raise DataError(
            f"data set {entry.name}: {source.file} from {origin} has sha256 {digest[:16]}…, the registry says "
            f"{source.sha256[:16]}… (checksum mismatch); {what_to_do}"
        )


def _download(source: Source, entry: Entry, target: Path) -> None:
    """Download to a temporary file beside ``target``; it replaces ``target`` only once size and sha256 match."""
    url = source_url(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.part-", dir=target.parent)
    tmp = Path(tmp_name)
    offline_hint = (
        f"check the network, or set {MIRROR_ENV} to a folder holding {entry.name}/raw/ "
        f"(e.g. {MIRROR_ENV}=../shared/data), or place the file in {target.parent}/"
    )
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "cmmerge-data"})
        got = 0
        with os.fdopen(fd, "wb") as fh:
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                    announced = response.headers.get("Content-Length")
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        fh.write(chunk)
                        got += len(chunk)
                if announced is not None and announced.isdigit() and got < int(announced):
                    raise http.client.IncompleteRead(b"", int(announced) - got)
            except urllib.error.HTTPError as exc:
                raise DataError(
                    f"data set {entry.name}: {source.file}: {url} answered HTTP {exc.code} ({exc.reason}); "
                    f"the pinned commit or path may be gone: {offline_hint}"
                ) from None
            except http.client.IncompleteRead as exc:
                raise DataError(
                    f"data set {entry.name}: download of {source.file} from {url} was cut off after "
                    f"{got + len(exc.partial)} of {source.size} bytes (partial file removed); run the command again"
                ) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                raise DataError(
                    f"data set {entry.name}: cannot download {source.file} from {url} ({reason}); {offline_hint}"
                ) from None
        _check(
            tmp,
            source,
            entry,
            url,
            "the file was not used; run the command again, and if it persists the file at that URL is not the one "
            f"registered (compare repository/commit/path in cmmerge/data/registry/{entry.name}.yaml)",
        )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def fetch_originals(entry: Entry, cache: Path, mirror: Path | None = None) -> Path:
    """The folder holding ``entry``'s verified originals (the mirror's, or the cache's after downloading)."""
    if mirror is not None:
        raw = mirror / entry.name / "raw"
        for source in entry.sources:
            path = raw / source.file
            if not path.is_file():
                raise DataError(
                    f"data set {entry.name}: the mirror lacks {path}; copy the original there "
                    f"(from {source.url}) or unset {MIRROR_ENV} to download it"
                )
            _check(path, source, entry, f"mirror {raw}", f"replace {path} with the original from {source.url}")
        return raw
    raw = cache / entry.name / "raw"
    for source in entry.sources:
        target = raw / source.file
        if _matches(target, source):
            continue
        if target.exists():
            log.warning("%s: cached %s does not match the registry; downloading it again", entry.name, source.file)
        log.info("%s: downloading %s", entry.name, source_url(source))
        _download(source, entry, target)
    return raw


def _mirror_from_env() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def convert(entry: Entry, raw: Path, required: dict[str, Path]) -> dict[str, str]:
    """Run the entry's converter and check that it made every registered output, none of them empty."""
    files = get_converter(entry.converter)(ConvertContext(entry.name, raw, required))
    missing = [name for name in entry.outputs if name not in files]
    if missing:
        raise DataError(f"data set {entry.name}: converter {entry.converter} did not write {', '.join(missing)}")
    for name in entry.outputs:
        if not files[name].strip():
            raise DataError(
                f"data set {entry.name}: converted {name} would be empty; the originals in {raw} do not hold what "
                f"converter {entry.converter} expects (check them against cmmerge/data/registry/{entry.name}.yaml)"
            )
    return {name: files[name] for name in entry.outputs}


def get_dataset(
    name: str,
    out: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
    registry: dict[str, Entry] | None = None,
) -> Path:
    """Fetch, verify and convert data set ``name`` into ``<out>/<name>/``; returns that folder.

    ``mirror`` defaults to ``$CMMERGE_DATA_MIRROR`` (unset: download), ``cache`` to :func:`default_cache`,
    ``out`` to ``data/real``. Nothing is written to ``<out>/<name>`` unless every step succeeded.
    """
    registry = load_registry() if registry is None else registry
    entry = lookup(name, registry)
    cache_dir = Path(cache) if cache is not None else default_cache()
    mirror_dir = Path(mirror) if mirror is not None else _mirror_from_env()
    raw = fetch_originals(entry, cache_dir, mirror_dir)
    required = {req: fetch_originals(lookup(req, registry), cache_dir, mirror_dir) for req in entry.requires}
    files = convert(entry, raw, required)
    target = Path(out if out is not None else DEFAULT_OUT) / name
    with atomic_dir(target) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private; the data set folder is for everyone who reads the data
        for file_name, text in files.items():
            (tmp / file_name).write_text(text, encoding="utf-8", newline="")
        (tmp / "raw").mkdir()
        for source in entry.sources:
            shutil.copyfile(raw / source.file, tmp / "raw" / source.file)
        (tmp / "registry.yaml").write_text(entry.text, encoding="utf-8")
    log.info("%s: wrote %s (%s)", name, target, ", ".join(files))
    return target


# ---------------------------------------------------------------------------------------------------------------
# command line: cmmerge data list | get NAME


def _data_paths(params: dict) -> list[str]:
    """Every data path a composed params mapping reads: the task, English and transfer sets, the CPT corpus and
    the synthesiser's sources, in the order they appear."""
    prepare, synth = params.get("prepare") or {}, params.get("synthesize") or {}
    paths = [
        (prepare.get("task") or {}).get("path"),
        (prepare.get("english") or {}).get("path"),
        *[spec.get("path") for spec in (params.get("transfer") or {}).values() if isinstance(spec, dict)],
        (params.get("corpus") or {}).get("real"),
        synth.get("source"),
        (synth.get("parallel") or {}).get("path"),
    ]
    return [p for p in paths if p]


def _under(path: str, root: Path) -> str | None:
    """The first path component below ``root`` (a data set's folder name), or None if ``path`` is elsewhere."""
    parts = Path(path).parts
    if parts[: len(root.parts)] == root.parts and len(parts) > len(root.parts):
        return parts[len(root.parts)]
    return None


def reads_from(params: dict, out: str | os.PathLike = DEFAULT_OUT) -> bool:
    """True if the params read any data under ``out`` (registered or not)."""
    return any(_under(p, Path(out)) for p in _data_paths(params))


def datasets_named_by(params: dict, registry: dict[str, Entry], out: str | os.PathLike = DEFAULT_OUT) -> list[str]:
    """The registered data sets a composed params mapping reads from ``out`` (``data/real/<name>``), in order."""
    names: list[str] = []
    for path in _data_paths(params):
        name = _under(path, Path(out))
        if name is not None and name not in names:
            lookup(name, registry)
            names.append(name)
    return names


def _cmd(args: argparse.Namespace) -> None:
    registry = load_registry()
    if args.config:
        from cmmerge.overlay import compose

        args.names = [
            *args.names,
            *[n for n in datasets_named_by(compose(args.config), registry) if n not in args.names],
        ]
    if args.action == "list":
        cache = Path(args.cache) if args.cache else default_cache()
        for entry in registry.values():
            cached = all(_matches(cache / entry.name / "raw" / s.file, s) for s in entry.sources)
            size = sum(s.size for s in entry.sources) / 1e6
            print(
                f"{entry.name:28s} {len(entry.sources):2d} originals {size:6.1f} MB  {'cached' if cached else '      '}"
            )
            print(f"  {entry.description}")
        return
    if not args.names:
        raise DataError("cmmerge data get: name a data set (or several); `cmmerge data list` shows them")
    for name in args.names:
        lookup(name, registry)
    for name in args.names:
        path = get_dataset(name, out=args.out, cache=args.cache, mirror=args.mirror, registry=registry)
        print(f"{name}: {path}")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``data`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "data",
        help="registered data sets: list, or get (fetch originals, verify sha256, convert)",
        description="Rebuild a data set folder from its public originals, checked against the registry's sha256 "
        f"(cmmerge/data/registry/). Originals come from the cache, from ${MIRROR_ENV}/<name>/raw/ when that is set, "
        "or from the registry URL.",
    )
    parser.add_argument("action", choices=["list", "get"])
    parser.add_argument("names", nargs="*", metavar="NAME", help="get: data set name(s)")
    parser.add_argument(
        "--out", default=str(DEFAULT_OUT), help="get: folder to write <NAME>/ into (default: %(default)s)"
    )
    parser.add_argument(
        "--cache", default=None, help=f"originals cache (default: ${CACHE_ENV} or ~/.cache/cmmerge/data)"
    )
    parser.add_argument("--mirror", default=None, help=f"offline copy holding <NAME>/raw/ (default: ${MIRROR_ENV})")
    parser.add_argument("--config", default=None, help="get: also every data set this experiment config reads")
    parser.set_defaults(func=_cmd)
    return parser
