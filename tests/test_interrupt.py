"""Clean interruption (issue 13, point 4): a real ``cmmerge merge`` stopped mid-write by SIGTERM or SIGINT
says so in one line, exits non-zero and leaves neither temporary folders nor a changed earlier output; one
killed by SIGKILL leaves a temporary folder that the next run sweeps; a full disk or a permission error is one
line and leaves nothing; DVCLive curves of a killed run never replace the previous run's.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cmmerge.cli import main
from cmmerge.fsutil import atomic_dir, curves_aside, sweep_stale

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_output_safety import leftovers, snapshot  # noqa: E402


def _llama(out: Path, seed: int) -> Path:
    """A random Llama of ~8.5M parameters (34 MB in float32): big enough that writing its merge takes a while."""
    import tiny

    return tiny.tiny_llama(out, seed, hidden_size=256, intermediate_size=1024, num_hidden_layers=8)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """``base`` and ``a`` checkpoints and ``merge.yaml`` (TIES, 4 MB shards) under one folder."""
    root = tmp_path_factory.mktemp("interrupt")
    cfg = {
        "merge_method": "ties",
        "base_model": str(_llama(root / "base", 0)),
        "models": [{"model": str(_llama(root / "a", 1)), "parameters": {"weight": 1.0}}],
        "parameters": {"density": 0.3},
        "max_shard_size": "4MB",
    }
    (root / "merge.yaml").write_text(yaml.safe_dump(cfg))
    return root


def _env() -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("CMMERGE_DEBUG", None)
    return env


def _merge(big: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "cmmerge", "merge", str(big / "merge.yaml"), str(out)]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference(big, tmp_path_factory) -> dict[str, str]:
    """The hashes of an uninterrupted merge."""
    out = tmp_path_factory.mktemp("reference") / "merged"
    done = _merge(big, out)
    assert done.returncode == 0, done.stderr
    return snapshot(out)


def _default_sigint() -> None:
    """SIGINT back to its default in the merge process, so that Python turns it into KeyboardInterrupt there.

    A shell without job control starts background commands with SIGINT ignored, and the ignore is inherited:
    a suite started as `pytest … &` from a script would hand the merge an ignored SIGINT, and Python installs
    no KeyboardInterrupt handler for a signal ignored at start-up (the merge would then finish with exit 0).
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_mid_write(big: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start a merge into ``out`` and send ``sig`` once its temporary folder holds a second shard."""
    cmd = [sys.executable, "-m", "cmmerge", "merge", str(big / "merge.yaml"), str(out)]
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint
    )
    deadline = time.monotonic() + 300
    hit = False
    while time.monotonic() < deadline and proc.poll() is None:
        if any(tmp.glob("model-00002-of-*") for tmp in out.parent.glob(f".{out.name}.tmp-*")):
            proc.send_signal(sig)
            hit = True
            break
        time.sleep(0.002)
    stdout, stderr = proc.communicate(timeout=300)
    assert hit, f"the merge finished before it could be stopped mid-write (rc {proc.returncode})"
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("cmmerge:") or "Traceback" in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


INTERRUPT_CASES = [
    ("sigterm", "SIGTERM during `cmmerge merge` (mid-write)", "exit 143, `cmmerge: terminated (SIGTERM)`"),
    ("sigint", "SIGINT (Ctrl-C) during `cmmerge merge` (mid-write)", "exit 130, `cmmerge: interrupted (SIGINT)`"),
    ("sigkill", "SIGKILL during `cmmerge merge`, then the same command again", "rerun sweeps the temp folder"),
    ("enospc", "disk full (ENOSPC) while writing a shard", "exit 1, `cmmerge: error: No space left on device`"),
    ("eacces", "permission denied (EACCES) while writing a shard", "exit 1, `cmmerge: error: Permission denied`"),
    ("stale", "temp/backup folders of earlier killed runs beside the output", "swept when that output is next written"),
    (
        "curves",
        "a cpt/finetune run killed after logging curves",
        "previous curves kept, new ones swapped in at the end",
    ),
]


SIGNALS = {
    "sigterm": (signal.SIGTERM, 143, "terminated (SIGTERM)"),
    "sigint": (signal.SIGINT, 130, "interrupted (SIGINT)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in INTERRUPT_CASES if c[0] in SIGNALS], ids=lambda c: c[0])
def test_signal_mid_write_cleans_up_and_keeps_the_previous_output(big, reference, tmp_path, case):
    sig, code, message = SIGNALS[case[0]]
    out = tmp_path / "merged"
    assert _merge(big, out).returncode == 0
    before = snapshot(out)
    stopped = _kill_mid_write(big, out, sig)
    assert stopped.returncode == code, stopped.stderr
    assert message in _one_line(stopped.stderr)
    assert not leftovers(tmp_path)  # the half-written temporary folder was removed
    assert snapshot(out) == before == reference  # the previous output is intact


@pytest.mark.slow
def test_sigkill_mid_write_then_rerun_completes_and_sweeps(big, reference, tmp_path):
    out = tmp_path / "merged"
    killed = _kill_mid_write(big, out, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    stale = leftovers(tmp_path)
    assert stale and not out.exists()  # SIGKILL cannot clean up: a half-written temporary folder is left
    rerun = _merge(big, out)
    assert rerun.returncode == 0, rerun.stderr
    assert not leftovers(tmp_path)  # swept at start-up
    assert snapshot(out) == reference  # complete, and bit-identical to an uninterrupted merge


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    from merge.helpers import perturbed, tiny_model

    root = tmp_path_factory.mktemp("small")
    base = tiny_model("llama", root / "base", layers=2)
    cfg = {
        "merge_method": "task_arithmetic",
        "base_model": str(base),
        "models": [{"model": str(perturbed(base, root / "a", seed=1)), "parameters": {"weight": 0.5}}],
    }
    (root / "merge.yaml").write_text(yaml.safe_dump(cfg))
    return root


OS_ERRORS = {"enospc": (errno.ENOSPC, "No space left on device"), "eacces": (errno.EACCES, "Permission denied")}


@pytest.mark.parametrize("case", [c for c in INTERRUPT_CASES if c[0] in OS_ERRORS], ids=lambda c: c[0])
def test_os_error_while_writing_is_one_line_and_leaves_nothing(small, tmp_path, monkeypatch, capsys, case):
    err, words = OS_ERRORS[case[0]]
    from cmmerge.merge.checkpoint import ShardedWriter

    real_write = ShardedWriter.write
    calls = []

    def failing_write(self, name, tensor):
        calls.append(name)
        if len(calls) == 3:  # after a shard has been opened and partly written
            raise OSError(err, os.strerror(err), str(self.folder / self.names[0]))
        return real_write(self, name, tensor)

    monkeypatch.setattr(ShardedWriter, "write", failing_write)
    out = tmp_path / "merged"
    (tmp_path / "previous").mkdir()
    capsys.readouterr()
    assert main(["merge", str(small / "merge.yaml"), str(out)]) == 1
    line = capsys.readouterr().err.strip().splitlines()
    assert len(line) == 1 and line[0].startswith("cmmerge: error: ") and words in line[0], line
    assert "model.safetensors" in line[0]  # names the path
    assert not out.exists() and not leftovers(tmp_path)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_startup_sweep_removes_only_stale_siblings_of_the_target(tmp_path):
    dead = _dead_pid()
    stale = [f".out.tmp-{dead}-abc123", f".out.old-{dead}", ".out.tmp-k2j3h4g5"]  # the last: an older version's name
    for name in stale:
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "model.safetensors").write_bytes(b"half")
    # kept: a running process' temporary folder, another target's, resumable checkpoints, look-alike user files
    for name in (f".out.tmp-{os.getpid()}-live", f".other.tmp-{dead}-x", ".out.checkpoints"):
        (tmp_path / name).mkdir()
    for name in ("out.tmp-1", "notes.txt", ".out.tmpfile"):
        (tmp_path / name).write_text("x")
    before = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(tuple(stale))}
    removed = sweep_stale(tmp_path / "out")
    assert sorted(p.name for p in removed) == sorted(stale)
    assert snapshot(tmp_path) == before
    # and atomic_dir sweeps before it writes
    (tmp_path / f".out.old-{dead}").mkdir()
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "f").write_text("new")
    assert not (tmp_path / f".out.old-{dead}").exists() and (tmp_path / "out" / "f").read_text() == "new"


def test_killed_training_leaves_the_previous_curves_intact(tmp_path):
    """``curves_aside`` (used by the cpt and finetune stages and commands) swaps new curves in only at the end."""
    live = tmp_path / "metrics" / "train" / "cpt"
    (live / "plots" / "metrics" / "train").mkdir(parents=True)
    (live / "plots" / "metrics" / "train" / "loss.tsv").write_text("step\tloss\n0\t7.2\n5\t6.9\n")
    previous = snapshot(live)
    with pytest.raises(KeyboardInterrupt), curves_aside(live) as aside:
        (aside / "plots").mkdir(parents=True)
        (aside / "plots" / "partial.tsv").write_text("step\tloss\n0\t7.3\n")
        raise KeyboardInterrupt  # killed mid-training
    assert snapshot(live) == previous
    assert (aside / "plots" / "partial.tsv").is_file()  # kept for a resumed run to carry on
    with curves_aside(live) as aside2:
        assert aside2 == aside
        (aside2 / "plots" / "partial.tsv").write_text("step\tloss\n0\t7.3\n5\t6.8\n")
    assert (live / "plots" / "partial.tsv").read_text().endswith("6.8\n")
    assert not (live / "plots" / "metrics").exists() and not aside.exists()
