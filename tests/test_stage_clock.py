"""The stage runner's clock: active time only, and the time of killed attempts carried into the rerun."""

from __future__ import annotations

import json
import time

import pytest

from cmmerge import runner
from cmmerge.errors import DataError
from cmmerge.runner import TIMINGS, StageClock, run_main, stage_params, stage_params_sha256
from cmmerge.train import kept


@pytest.fixture
def stage_env(tmp_path, monkeypatch):
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  cpt:\n    cmd: python cpt.py\n    params: [seed]\n")
    monkeypatch.setenv("DVC_STAGE", "cpt")
    monkeypatch.chdir(tmp_path)  # DVC runs a stage's command in the repository it runs
    return tmp_path


def _partial(root, **entry):
    path = root / TIMINGS / "cpt.partial.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry))
    return path


def test_a_stopped_process_does_not_count_the_time_it_stood_still(tmp_path):
    clock = StageClock("cpt", tmp_path, tick=5.0)
    clock._last = 0.0
    for now in (5.0, 10.0, 510.0, 515.0):  # between 10 and 510 the process was stopped (kill -STOP)
        clock.advance(now)
    assert clock.seconds() == 5 + 5 + 10 + 5  # the stopped stretch counts as one capped tick


def test_the_clock_keeps_a_partial_while_the_stage_runs(tmp_path):
    clock = StageClock("cpt", tmp_path, tick=0.01).start()
    deadline = time.time() + 10
    while not clock.path.is_file() and time.time() < deadline:
        time.sleep(0.01)
    entry = json.loads(clock.path.read_text())
    assert entry["attempts"] == 1 and entry["seconds"] >= 0  # what a kill -9 now would leave for the rerun
    clock.stop(keep_partial=False)
    assert not clock.path.exists()


def test_a_finished_stage_adds_the_time_of_its_killed_attempts(stage_env):
    params = stage_params_sha256(stage_env, "cpt")
    partial = _partial(stage_env, params_sha256=params, attempts=2, seconds=100.0, cpu_seconds=90.0)
    assert run_main(lambda: None) == 0
    timing = json.loads((stage_env / TIMINGS / "cpt.json").read_text())
    assert timing["interrupted_attempts"] == 2 and timing["interrupted_seconds"] == 100.0
    assert 100.0 <= timing["seconds"] < 110.0 and timing["cpu_seconds"] >= 90.0
    assert not partial.exists(), "the partial is used once"


def test_a_partial_of_other_params_is_not_added(stage_env):
    partial = _partial(stage_env, params_sha256="0" * 64, attempts=1, seconds=100.0, cpu_seconds=90.0)
    assert run_main(lambda: None) == 0
    timing = json.loads((stage_env / TIMINGS / "cpt.json").read_text())
    assert timing["interrupted_attempts"] == 0 and timing["seconds"] < 100.0
    assert not partial.exists()


def test_an_interrupted_stage_leaves_its_time_and_a_failed_one_does_not(stage_env):
    def interrupted():
        raise KeyboardInterrupt

    assert run_main(interrupted) == 130
    entry = json.loads((stage_env / TIMINGS / "cpt.partial.json").read_text())
    assert entry["attempts"] == 1 and not (stage_env / TIMINGS / "cpt.json").exists()
    assert run_main(interrupted) == 130
    assert json.loads((stage_env / TIMINGS / "cpt.partial.json").read_text())["attempts"] == 2

    def failed():
        raise DataError("bad input")

    assert run_main(failed) == 2
    assert not (stage_env / TIMINGS / "cpt.partial.json").exists()
    assert not (stage_env / TIMINGS / "cpt.json").exists()


def test_a_change_to_another_stages_params_keeps_the_partial(stage_env):
    """The partial is keyed to the params DVC keys the stage by, not to the whole params.yaml."""
    partial = _partial(stage_env, params_sha256=stage_params_sha256(stage_env, "cpt"), attempts=1, seconds=100.0)
    (stage_env / "params.yaml").write_text("seed: 1\nreport: {alpha: 0.05}\n")  # a key cpt does not list
    assert run_main(lambda: None) == 0
    timing = json.loads((stage_env / TIMINGS / "cpt.json").read_text())
    assert timing["interrupted_attempts"] == 1 and timing["seconds"] >= 100.0
    assert not partial.exists()
    assert timing["stage_params_sha256"] == stage_params_sha256(stage_env, "cpt")


def test_stage_params_resolve_foreach_and_templates_as_dvc_does(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "methods: {a: {lr: 1}, b: {lr: 2}}\nsweep: {merge: ta}\nmerges: {ta: {l: 0.5}, ties: {l: 1}}\nft: {x: 3}\n"
    )
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  finetune:\n    foreach: ${methods}\n    do:\n      cmd: echo ${key}\n"
        '      params: ["methods.${key}", ft]\n'
        '  sweep:\n    cmd: echo\n    params: ["merges.${sweep.merge}", {params.yaml: [ft.x]}]\n'
        "  other:\n    cmd: echo\n    params: [{other.yaml: [y]}]\n"
    )
    assert stage_params(tmp_path, "finetune@b") == {"methods.b": {"lr": 2}, "ft": {"x": 3}}
    assert stage_params(tmp_path, "sweep") == {"merges.ta": {"l": 0.5}, "ft.x": 3}
    # what this resolver does not know falls back to the whole file, never to a wrong key
    assert stage_params(tmp_path, "other") is None and stage_params(tmp_path, "finetune@zzz") is None
    whole = __import__("hashlib").sha256((tmp_path / "params.yaml").read_bytes()).hexdigest()
    assert stage_params_sha256(tmp_path, "other") == whole


def test_a_queued_experiment_times_its_own_copy_not_the_parent(tmp_path, monkeypatch):
    """DVC sets DVC_ROOT to the parent repository for a queued experiment; its timing belongs to its own copy."""
    parent, copy = tmp_path / "parent", tmp_path / "copy"
    for root, seed in ((parent, 1), (copy, 2)):  # the variant changed the stage's params
        root.mkdir()
        (root / "params.yaml").write_text(f"seed: {seed}\n")
        (root / "dvc.yaml").write_text("stages:\n  cpt:\n    cmd: python cpt.py\n    params: [seed]\n")
    (parent / TIMINGS).mkdir(parents=True)
    parents_own = '{"stage": "cpt", "seconds": 123.0}\n'
    (parent / TIMINGS / "cpt.json").write_text(parents_own)
    monkeypatch.setenv("DVC_STAGE", "cpt")
    monkeypatch.setenv("DVC_ROOT", str(parent))
    monkeypatch.chdir(copy)
    assert run_main(lambda: None) == 0
    assert (parent / TIMINGS / "cpt.json").read_text() == parents_own, "the parent's timing is left alone"
    timing = json.loads((copy / TIMINGS / "cpt.json").read_text())
    assert timing["stage_params_sha256"] == stage_params_sha256(copy, "cpt") != stage_params_sha256(parent, "cpt")


def test_a_kept_cell_is_timed_on_the_stage_clock(tmp_path, monkeypatch):
    """A cell trained while the stage was stopped (SIGSTOP) counts the stopped stretch as at most two ticks."""
    clock = StageClock("recipe", tmp_path, tick=5.0)
    monkeypatch.setattr(runner, "_running_clock", clock)
    cell = tmp_path / "cells" / "lr1e-4_ep3" / "seed1.json"
    assert kept.load_kept(cell, "fp") is None  # missed at active time ~0: the cell is trained now
    clock.active = 7.0  # 7 s of ticks, then the process stood still for 500 s since the last one
    clock._last = time.monotonic() - 500.0
    kept.keep(cell, "fp", {"score": 0.5})
    assert json.loads(cell.read_text())["seconds"] == pytest.approx(7.0 + 2 * 5.0, abs=0.2)


def test_outside_a_stage_a_kept_cell_is_timed_on_the_wall_clock(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "_running_clock", None)
    cell = tmp_path / "seed1.json"
    assert kept.load_kept(cell, "fp") is None
    time.sleep(0.2)
    kept.keep(cell, "fp", {"score": 0.5})
    assert 0.2 <= json.loads(cell.read_text())["seconds"] < 5.0


def _grid_stage(cell, interrupt: bool):
    """A grid stage: reuse the kept cell or train it (0.3 s), then finish or be interrupted (SIGINT)."""

    def stage():
        if kept.load_kept(cell, "fp") is None:
            time.sleep(0.3)
            kept.keep(cell, "fp", {"score": 0.5})
        if interrupt:
            raise KeyboardInterrupt

    return stage


@pytest.mark.parametrize("first_run", ["killed", "finished"])
def test_a_cell_is_counted_once_whether_its_run_was_killed_or_finished(stage_env, monkeypatch, first_run):
    """A killed attempt's time holds the cells it kept: the rerun that reuses them adds that time, not theirs
    again. A cell kept by a finished run is reused compute, counted as such."""
    monkeypatch.setattr(kept, "reused", {"seconds": 0.0, "untimed": 0})
    cell = stage_env / "cells" / "seed1.json"
    assert run_main(_grid_stage(cell, interrupt=first_run == "killed")) == (130 if first_run == "killed" else 0)
    trained = json.loads(cell.read_text())["seconds"]
    assert trained >= 0.3
    monkeypatch.setattr(kept, "reused", {"seconds": 0.0, "untimed": 0})
    assert run_main(_grid_stage(cell, interrupt=False)) == 0
    timing = json.loads((stage_env / TIMINGS / "cpt.json").read_text())
    if first_run == "killed":
        assert timing["interrupted_attempts"] == 1 and timing["interrupted_seconds"] >= trained - 0.1
        assert timing["reused_seconds"] == 0.0, "the cell's time is in the killed attempt's already"
    else:
        assert timing["interrupted_attempts"] == 0 and timing["reused_seconds"] == trained
