"""Entry-point wrapper shared by the stage scripts and the command line.

A :class:`~cmmerge.errors.CmmergeError` becomes one line on stderr and exit status 2; an ``OSError`` (disk
full, permission denied, …) one line and exit status 1; SIGINT and SIGTERM one line and 130 / 143. Each is
raised through the running code, so :func:`cmmerge.fsutil.atomic_dir` removes its temporary folder and a
failed or stopped stage leaves nothing half-written behind. ``CMMERGE_DEBUG=1`` keeps the traceback.

Importing this module (every stage script does, and the ``cmmerge`` command) imports :mod:`cmmerge`
first, which sets the Hugging Face offline environment before anything of that stack is imported.

Under ``dvc repro`` / ``dvc exp run`` (DVC sets ``DVC_STAGE`` for a stage's command), a stage that finishes
writes how long it took to ``.cmmerge/timings/<stage>.json`` in the repository it runs in (git-ignored,
not a DVC out, so it never changes a stage's outputs or makes a run non-deterministic). ``cmmerge results
record`` copies the timings of the recorded configuration into the record (:mod:`cmmerge.records`); that is
where README's run times come from. The time is *active* wall time, measured by :class:`StageClock`: a stopped
process (SIGSTOP, a suspended machine) does not count the time it stood still, and a stage killed outright (the
machine restarting) leaves what it ran in ``<stage>.partial.json``, which the next run of that stage with the
same params of its own (not the whole params.yaml) adds, counting the interrupted attempt.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import cmmerge  # noqa: F401 - sets the offline environment (see cmmerge/__init__.py)
from cmmerge.errors import CmmergeError

log = logging.getLogger("cmmerge")


def setup_logging(level: int = logging.INFO) -> None:
    """Readable progress logs, and the Hugging Face stack kept offline and quiet unless asked."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    # The offline environment itself is set when cmmerge is imported (cmmerge/__init__.py): here it would be
    # too late for a stage that imported transformers at the top.
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt so that clean-up code runs."""


def _raise_terminated(signum, frame) -> None:
    # a second SIGTERM during clean-up ends the process at once; what it leaves is swept by the next run
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write the output elsewhere",
    errno.EDQUOT: "the disk quota is exceeded: free space or write the output elsewhere",
    errno.EACCES: "check the permissions of that path, or write the output elsewhere",
    errno.EPERM: "check the permissions of that path, or write the output elsewhere",
    errno.EROFS: "the file system is read-only: write the output elsewhere",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError``: what failed, on which path, and what to do."""
    what = exc.strerror or str(exc) or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    hint = _OS_HINTS.get(exc.errno, "")
    return f"{what}{where}" + (f"; {hint}" if hint else "")


TIMINGS = ".cmmerge/timings"  # under the repository the stage runs in (see run_main)


def _params_sha256(root: str | os.PathLike) -> str | None:
    import hashlib
    from pathlib import Path

    # hashlib rather than cmmerge.checksums: this module is part of every stage's code, and DVC lists that code
    # as each stage's deps (tests/pipeline/test_stage_wiring.py); params.yaml is a small file
    params = Path(root) / "params.yaml"
    return hashlib.sha256(params.read_bytes()).hexdigest() if params.is_file() else None


_TEMPLATE = re.compile(r"\$\{\s*([^}\s]+)\s*\}")


class PipelineParams:
    """dvc.yaml's stages and params.yaml's values, read once, resolving each stage's own params from them.

    :meth:`of` gives the params DVC stage ``stage`` lists in dvc.yaml, with their values in params.yaml, as
    dvc.lock keeps them. ``stage`` is DVC's name (``cpt``, ``finetune@full_ft`` for a ``foreach`` entry). Each
    listed name is resolved as DVC resolves it (``${key}``, ``${item}`` and ``${a.b}`` from params.yaml), then
    looked up by its dotted path: ``{"methods.full_ft": {...}, "finetune": {...}}``. None where the stage or a
    name cannot be resolved here (a params file other than params.yaml, a template this small resolver does not
    know); :meth:`sha256` then falls back to the whole params.yaml.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        from pathlib import Path

        import yaml

        from cmmerge import yaml12

        self.root = Path(root)
        try:
            self.stages = yaml12.load((self.root / "dvc.yaml").read_text())["stages"]
            self.values = yaml12.load((self.root / "params.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            self.stages, self.values = None, {}

    def of(self, stage: str) -> dict | None:
        scope = dict(self.values)

        def lookup(name: str):
            node = scope
            for part in name.split("."):
                if not isinstance(node, dict) or part not in node:
                    raise LookupError(name)
                node = node[part]
            return node

        def resolve(text: str):
            whole = _TEMPLATE.fullmatch(text.strip())
            if whole:  # `foreach: ${methods}` is the mapping itself, not its text
                return lookup(whole.group(1))
            return _TEMPLATE.sub(lambda m: str(lookup(m.group(1))), text)

        name, _, key = stage.partition("@")
        entry = self.stages.get(name) if isinstance(self.stages, dict) else None
        try:
            if isinstance(entry, dict) and "foreach" in entry:
                items = resolve(entry["foreach"]) if isinstance(entry["foreach"], str) else entry["foreach"]
                scope.update(key=key, item=items[key])
                entry = entry.get("do")
            if not isinstance(entry, dict):
                return None
            names = []
            for listed in entry.get("params", []):
                if isinstance(listed, str):
                    names.append(resolve(listed))
                elif isinstance(listed, dict) and set(listed) == {"params.yaml"}:
                    names.extend(resolve(n) for n in listed["params.yaml"])
                else:
                    return None
            return {n: lookup(n) for n in names}
        except (LookupError, TypeError, AttributeError):
            return None

    def sha256(self, stage: str) -> str | None:
        """sha256 of :meth:`of` (canonical JSON), or of the whole params.yaml where that is None.

        A stage's timing is keyed to its own params, as DVC keys the stage: a change elsewhere in params.yaml
        (a key another stage reads, a commit that adds one) neither discards a killed attempt's time nor hides
        a finished stage's time from the record.
        """
        import hashlib
        import json

        own = self.of(stage)
        if own is None:
            return _params_sha256(self.root)
        return hashlib.sha256(json.dumps(own, sort_keys=True, default=str).encode()).hexdigest()


def stage_params(root: str | os.PathLike, stage: str) -> dict | None:
    """:meth:`PipelineParams.of` for one stage."""
    return PipelineParams(root).of(stage)


def stage_params_sha256(root: str | os.PathLike, stage: str) -> str | None:
    """:meth:`PipelineParams.sha256` for one stage."""
    return PipelineParams(root).sha256(stage)


class StageClock:
    """Active wall time and CPU time of a running stage, kept on disk as it runs.

    A daemon thread ticks every ``tick`` seconds and adds the time since the previous tick, capped at two ticks,
    so a process that was stopped (``kill -STOP`` while something else needs the cores, a suspended machine)
    does not count the time it stood still. Each tick rewrites ``<stage>.partial.json`` with the time so far
    and the hash of the stage's own params (:func:`stage_params_sha256`). A run killed outright leaves that
    file; the next run of the stage with the same params starts from its time and counts one more interrupted
    attempt (a resumable stage, such as training from its checkpoints, needed that time; a stage that starts
    over did not, which the record says by naming the stages with interrupted attempts). A partial written
    under other params of the stage is discarded.
    """

    def __init__(self, stage: str, root: str | os.PathLike, tick: float = 5.0) -> None:
        import json
        from pathlib import Path

        self.path = Path(root) / TIMINGS / f"{stage}.partial.json"
        self.params_sha256 = stage_params_sha256(root, stage)
        self.tick = tick
        earlier = None
        with contextlib.suppress(OSError, ValueError):
            earlier = json.loads(self.path.read_text())
        if not isinstance(earlier, dict) or earlier.get("params_sha256") != self.params_sha256:
            earlier = {}
        runs = earlier.get("runs")
        self.earlier = {
            "attempts": int(earlier.get("attempts", 0)),
            "seconds": float(earlier.get("seconds", 0.0)),
            "cpu_seconds": float(earlier.get("cpu_seconds", 0.0)),
            # the ids of the killed attempts whose time this is: a grid cell one of them kept is in that time
            # already, so the stage does not add its seconds again when it reuses it (cmmerge.train.kept)
            "runs": [str(r) for r in runs] if isinstance(runs, list) else [],
        }
        self.run_id = uuid.uuid4().hex[:12]
        self.active = 0.0
        self._last = time.monotonic()
        self._cpu_started = _cpu_seconds()
        self._stop = None
        self._thread = None

    def advance(self, now: float) -> None:
        """Add the time since the last tick (at most two ticks) to the active time."""
        self.active += min(max(now - self._last, 0.0), 2 * self.tick)
        self._last = now

    def seconds(self) -> float:
        return self.active

    def now(self) -> float:
        """The active time up to this moment: the ticks so far and the time since the last (at most two ticks)."""
        return self.active + min(max(time.monotonic() - self._last, 0.0), 2 * self.tick)

    def cpu_seconds(self) -> float:
        return _cpu_seconds() - self._cpu_started

    def save_partial(self) -> None:
        """What this run and the interrupted ones before it ran, for a run that follows a kill."""
        import json

        from cmmerge.fsutil import atomic_file

        entry = {
            "params_sha256": self.params_sha256,
            "attempts": self.earlier["attempts"] + 1,
            "runs": [*self.earlier["runs"], self.run_id],
            "seconds": round(self.earlier["seconds"] + self.active, 1),
            "cpu_seconds": round(self.earlier["cpu_seconds"] + self.cpu_seconds(), 1),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path) as fh:
            fh.write(json.dumps(entry) + "\n")

    def start(self) -> StageClock:
        import threading

        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(self.tick):
                self.advance(time.monotonic())
                with contextlib.suppress(OSError):  # a timing is a side note: never fail a stage over it
                    self.save_partial()

        self._thread = threading.Thread(target=run, name="cmmerge-stage-clock", daemon=True)
        self._thread.start()
        return self

    def stop(self, keep_partial: bool) -> None:
        """Stop ticking; keep the partial (the stage was interrupted and may be rerun) or remove it."""
        if self._stop is not None:
            self._stop.set()
            self._thread.join()  # a tick in progress must not write the partial after it is removed
        self.advance(time.monotonic())
        with contextlib.suppress(OSError):
            if keep_partial:
                self.save_partial()
            else:
                self.path.unlink(missing_ok=True)


_running_clock: StageClock | None = None  # the clock of the stage this process runs (run_main), if any


def stage_time() -> float:
    """A clock for timing part of a stage: the running stage's active time (:meth:`StageClock.now`), else
    ``time.perf_counter``. Differences of two readings in one process are seconds of work; a stretch when the
    stage was stopped (SIGSTOP) counts at most two ticks, as in the stage's own time.
    """
    clock = _running_clock
    return clock.now() if clock is not None else time.perf_counter()


def stage_runs() -> tuple[str | None, frozenset[str]]:
    """The running stage's run id, and the ids of its killed attempts whose time the stage counts already
    (:class:`StageClock`); ``(None, frozenset())`` outside a stage."""
    clock = _running_clock
    if clock is None:
        return None, frozenset()
    return clock.run_id, frozenset(clock.earlier["runs"])


def write_stage_timing(
    stage: str,
    seconds: float,
    cpu_seconds: float,
    root: str | os.PathLike,
    reused: dict | None = None,
    interrupted: dict | None = None,
    stage_sha256: str | None = None,
) -> None:
    """Record that DVC stage ``stage`` ran for ``seconds`` (wall clock) on this machine.

    ``reused`` is the compute time of kept grid cells (:mod:`cmmerge.train.kept`) the stage took from earlier
    runs instead of training them again, and how many reused cells had no time. ``interrupted`` is what
    earlier, killed attempts of the stage with these params ran (``attempts``, ``seconds``, ``cpu_seconds``:
    :class:`StageClock`); it is added to ``seconds`` and ``cpu_seconds``. The file also names the sha256 of the
    stage's own params (``stage_sha256``, the :class:`StageClock`'s when the runner writes it; else read now) and
    of the whole params.yaml, so that a record takes only the timings of its own configuration, and the
    machine's CPU count, so a reader can scale them.
    """
    import datetime as dt
    import json
    from pathlib import Path

    from cmmerge.fsutil import atomic_file

    root = Path(root)
    interrupted = interrupted or {}
    entry = {
        "stage": stage,
        "seconds": round(seconds + interrupted.get("seconds", 0.0), 1),
        "cpu_seconds": round(cpu_seconds + interrupted.get("cpu_seconds", 0.0), 1),
        "reused_seconds": round((reused or {}).get("seconds", 0.0), 1),
        "reused_untimed": (reused or {}).get("untimed", 0),
        "interrupted_attempts": interrupted.get("attempts", 0),
        "interrupted_seconds": round(interrupted.get("seconds", 0.0), 1),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "params_sha256": _params_sha256(root),
        "stage_params_sha256": stage_sha256 or stage_params_sha256(root, stage),
    }
    path = root / TIMINGS / f"{stage}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:
        fh.write(json.dumps(entry, indent=2) + "\n")


def run_main(fn: Callable[[], object]) -> int:
    """Run ``fn``; user errors, system errors and SIGINT/SIGTERM become one line on stderr and an exit status."""
    setup_logging()
    debug = os.environ.get("CMMERGE_DEBUG", "") not in ("", "0")
    # The repository is the working directory: DVC runs a stage's command in the stage's folder, and dvc.yaml
    # sits at the root. Not DVC_ROOT: for a queued experiment DVC points it at the parent repository, so the
    # variant's timings would overwrite the parent's, keyed to the parent's params.yaml.
    stage, root = os.environ.get("DVC_STAGE"), os.getcwd()
    clock = StageClock(stage, root).start() if stage else None
    global _running_clock
    _running_clock = clock
    interrupted = False  # a stopped stage keeps its partial time for the rerun; a failed one does not
    try:
        with _sigterm_raises():
            fn()
    except CmmergeError as exc:
        print(f"cmmerge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        interrupted = True
        print("cmmerge: interrupted (SIGINT); temporary files removed, earlier outputs kept", file=sys.stderr)
        return 130
    except Terminated:
        interrupted = True
        print("cmmerge: terminated (SIGTERM); temporary files removed, earlier outputs kept", file=sys.stderr)
        return 143
    except OSError as exc:
        if debug:
            raise
        print(f"cmmerge: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    finally:  # every way out stops the clock; only a stopped stage (SIGINT/SIGTERM) keeps its partial time
        _running_clock = None
        if clock is not None:
            clock.stop(keep_partial=interrupted)
    if clock is not None:
        try:
            write_stage_timing(
                stage,
                clock.seconds(),
                clock.cpu_seconds(),
                root,
                getattr(sys.modules.get("cmmerge.train.kept"), "reused", None),
                clock.earlier,
                clock.params_sha256,
            )
        except OSError as exc:  # a timing is a side note: never fail a finished stage over it
            log.warning("could not record the stage's run time: %s", describe_os_error(exc))
    return 0


def _cpu_seconds() -> float:
    """User + system CPU time of this process and the children it waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def stage_main(fn: Callable[[], object]) -> None:
    """``if __name__ == "__main__": stage_main(main)`` in every stage script."""
    sys.exit(run_main(fn))


def stage_args(
    doc: str | None,
    *positional: str,
    paths: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    folders: dict[str, str] | None = None,
):
    """The names and paths a stage script works on, parsed from its command line.

    dvc.yaml passes every path a stage reads or writes as an argument (``--out models/cpt``), as DVC's
    example-get-started does, so each path is written once, in dvc.yaml beside the stage's deps and outs,
    and never in the script. ``positional`` are names (a foreach key); ``paths`` are required ``--options``,
    ``optional`` ones may be left out. Dashes become underscores in the returned namespace.

    ``folders`` names the output folders the stage replaces, each with a glob of what marks an earlier output
    of this stage in it. Before any work each is checked as ``cmmerge`` commands check theirs
    (:func:`cmmerge.fsutil.check_output`): never ``.``, a root, the home folder, or a path that is, holds or
    lies inside another path the stage was given; and, without ``--force``, not a non-empty folder that
    neither cmmerge nor this stage wrote. Under ``dvc repro`` the folder is gone already (DVC removes outs
    before running a stage); the check is for a stage script run by hand with other paths.
    """
    import argparse

    from cmmerge.fsutil import check_output, has_manifest

    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    for name in positional:
        parser.add_argument(name)
    for name in paths:
        parser.add_argument(f"--{name}", required=True, metavar="PATH")
    for name in optional:
        parser.add_argument(f"--{name}", metavar="PATH")
    if folders:
        parser.add_argument("--force", action="store_true", help="replace an output folder cmmerge did not write")
    args = parser.parse_args()
    for name, marker in (folders or {}).items():
        given = [getattr(args, p.replace("-", "_")) for p in (*paths, *optional) if p != name]

        def ours(folder, marker=marker) -> bool:
            return has_manifest(folder) or any(folder.glob(marker))

        check_output(getattr(args, name), given, force=args.force, ours=ours, what=f"--{name} output folder")
    return args
