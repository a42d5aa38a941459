"""Small file helpers: atomic writes of folders and files, JSON and JSONL I/O, and where outputs may go.

Atomic writes go through a temporary sibling named ``.<name>.tmp-<pid>-<random>`` that is renamed over
the target at the end (the previous target is moved to ``.<name>.old-<pid>`` for the moment of the swap).
A run killed with SIGKILL cannot clean up after itself, so every atomic write first sweeps the siblings of
its own target that a dead process left behind (:func:`sweep_stale`): only names of exactly this pattern,
next to the output being written, are ever removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cmmerge.errors import CmmergeError, DataError

log = logging.getLogger(__name__)

#: files that only cmmerge writes into an output folder: a non-empty folder holding none of them is not replaced
#: without ``--force`` (it may be the user's)
MANIFESTS = ("merge_manifest.json", "cpt_summary.json", "train_summary.json", "record.json")
# the files of a ``save_pretrained`` folder (model and tokenizer): what ``cmmerge base`` writes
_SAVED_MODEL = re.compile(
    r"^(config\.json|generation_config\.json|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json"
    r"|tokenizer(_config)?\.json|special_tokens_map\.json|added_tokens\.json|vocab\.(txt|json)|merges\.txt"
    r"|tokenizer\.model|sentencepiece\.bpe\.model|spiece\.model|chat_template\.(jinja|json))$"
)


class OutputError(CmmergeError):
    """An output path that would destroy an input or files cmmerge did not write."""


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back (this process is single-threaded here)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _honour_umask(path: Path, is_dir: bool) -> None:
    """``mkdtemp``/``mkstemp`` create 0700/0600 whatever the umask; give the output the mode a plain
    ``mkdir``/``open`` would have, so a shared models folder stays readable by the group it is shared with."""
    path.chmod((0o777 if is_dir else 0o666) & ~_umask())


def _honour_umask_tree(root: Path) -> None:
    """The modes of a finished output folder as if every entry had been created here under the umask: files
    copied in with ``shutil.copy2`` would otherwise keep their source's mode (executable bits are kept)."""
    mask = _umask()
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            p = Path(folder, name)
            if not p.is_symlink():
                p.chmod(0o777 & ~mask)
        for name in files:
            p = Path(folder, name)
            if not p.is_symlink():
                executable = p.stat().st_mode & 0o111
                p.chmod((0o777 if executable else 0o666) & ~mask)
    root.chmod(0o777 & ~mask)


def _stale_owner(name: str, target_name: str) -> int | None:
    """The process id in a temporary/backup sibling name of ``target_name`` (0: a name without one, as
    earlier versions wrote), or None when ``name`` is not such a sibling."""
    for kind in ("tmp", "old"):
        prefix = f".{target_name}.{kind}-"
        if name.startswith(prefix):
            m = re.match(r"(\d+)(-|$)", name[len(prefix) :])
            return int(m.group(1)) if m else 0
    return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_tree(path: Path) -> bool:
    """Remove a folder (or file) even where read-only folders inside it block the removal; True if gone."""

    def make_writable_and_retry(func, p, _exc_info) -> None:
        # a read-only folder keeps its entries: make it (and the entry) writable and try once more
        with contextlib.suppress(OSError):
            parent = Path(p).parent
            parent.chmod(parent.stat().st_mode | stat.S_IRWXU)
            if Path(p).is_dir() and not Path(p).is_symlink():
                Path(p).chmod(Path(p).stat().st_mode | stat.S_IRWXU)
            func(p)

    if path.is_dir() and not path.is_symlink():
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | stat.S_IRWXU)
        shutil.rmtree(path, onerror=make_writable_and_retry)  # onexc only from Python 3.12
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return not (path.exists() or path.is_symlink())


def sweep_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the ``.<name>.tmp-*`` / ``.<name>.old-*`` siblings of ``target`` left by killed runs.

    A sibling is stale when the process id in its name is not running (names without an id come from
    earlier versions and are always stale). Nothing else is touched. Returns what was removed.
    """
    target = Path(target)
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for entry in target.parent.iterdir():
        pid = _stale_owner(entry.name, target.name)
        if pid is None or _alive(pid):
            continue
        if remove_tree(entry):
            log.info("removed %s, left behind by an interrupted run", entry)
            removed.append(entry)
        else:
            log.warning("could not remove %s, left behind by an interrupted run; remove it by hand", entry)
    return removed


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it replaces ``target`` in one rename.

    On any exception (a signal turned into one by :mod:`cmmerge.runner` included) the temporary folder is
    removed and ``target`` is left as it was, so an interrupted stage never leaves a half-written
    checkpoint behind; what a SIGKILL leaves is swept by the next write of the same target.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        _honour_umask(tmp, is_dir=True)
        yield tmp
        _honour_umask_tree(tmp)
        _swap_into(tmp, target)
    except BaseException:
        remove_tree(tmp)
        raise


def _swap_into(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` over ``target``; if the second rename fails the old ``target`` is put back."""
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if old.exists() or old.is_symlink():
        remove_tree(old)
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(old, target)
        raise
    if not remove_tree(old):
        log.warning("could not remove the previous %s, kept as %s; remove it by hand", target, old)


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary file beside ``target`` for writing and rename it over ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent)
    os.close(fd)
    try:
        _honour_umask(Path(tmp), is_dir=False)
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _resolved(p: str | os.PathLike) -> Path:
    return Path(os.path.abspath(Path(p).expanduser())).resolve()


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def has_manifest(folder: Path) -> bool:
    """True if ``folder`` holds one of the files only cmmerge writes (:data:`MANIFESTS`)."""
    return any((folder / name).is_file() for name in MANIFESTS)


def is_saved_model(folder: Path) -> bool:
    """True if ``folder`` holds nothing but ``save_pretrained`` files (what ``cmmerge base`` writes)."""
    entries = list(folder.iterdir())
    return bool(entries) and all(e.is_file() and _SAVED_MODEL.match(e.name) for e in entries)


def check_output(
    out: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None] = (),
    *,
    force: bool = False,
    ours: Callable[[Path], bool] = has_manifest,
    what: str = "output folder",
) -> Path:
    """Refuse an output path whose replacement would destroy something: call before any work is done.

    - never (not even with ``force``): the current folder, a filesystem root, the home folder, an input,
      a folder that contains an input, or a path inside an input (``inputs`` that do not exist are skipped:
      the reader reports them);
    - without ``force``: an existing file, or a non-empty folder that ``ours`` does not recognise as
      written by cmmerge (by default: it holds one of :data:`MANIFESTS`).

    Returns ``out`` as a Path. Raises :class:`OutputError` naming the path and what to do.
    """
    out = Path(out)
    real = _resolved(out)
    if real == _resolved(Path.cwd()):
        raise OutputError(
            f"{what} '{out}' is the current folder: replacing it would delete everything in it; name a new folder"
        )
    if real.parent == real:
        raise OutputError(f"{what} '{out}' is a filesystem root; name a new folder")
    if real == _resolved(Path.home()):
        raise OutputError(f"{what} '{out}' is your home folder; name a new folder")
    for inp in inputs:
        if inp is None or str(inp) == "":
            continue
        p = Path(inp).expanduser()
        if not (p.exists() or p.is_symlink()):
            continue
        rin = _resolved(p)
        if real == rin:
            relation = "is the input"
        elif _within(rin, real):
            relation = "contains the input"
        elif _within(real, rin):
            relation = "lies inside the input"
        else:
            continue
        raise OutputError(
            f"{what} '{out}' {relation} '{inp}': writing it would delete that input; name a folder outside the inputs"
        )
    if force or not (out.exists() or out.is_symlink()):
        return out
    if not out.is_dir():
        raise OutputError(f"{what} '{out}' is a file, not a folder; remove it, name another folder, or pass --force")
    if any(out.iterdir()) and not ours(out):
        raise OutputError(
            f"{what} '{out}' is a non-empty folder that cmmerge did not write (no {' / '.join(MANIFESTS[:3])}); "
            "name an empty or new folder, or pass --force to replace it and everything in it"
        )
    return out


@contextlib.contextmanager
def curves_aside(live_dir: str | os.PathLike) -> Iterator[Path]:
    """A DVCLive folder for a training run that replaces ``live_dir`` only when the run finishes.

    The run logs into ``.<name>.curves-new`` beside ``live_dir``; a killed run leaves the previous run's
    curves in ``live_dir`` untouched, and its own partial curves in the sibling, where a resumed run
    (same checkpoint folder) carries on logging. On success the sibling is swapped in.
    """
    live_dir = Path(live_dir)
    live_dir.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(live_dir)
    aside = live_dir.with_name(f".{live_dir.name}.curves-new")
    yield aside
    # under `accelerate launch` only the main process logs, so only it swaps (RANK is set by the launcher)
    if os.environ.get("RANK", "0") in ("", "0") and aside.is_dir():
        _swap_into(aside, live_dir)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes, so DVC sees no spurious change)."""
    with atomic_file(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write one JSON object per line; returns the number of rows."""
    n = 0
    with atomic_file(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True))
            fh.write("\n")
            n += 1
    return n


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file; a broken line is reported with its line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not a JSON object ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows
