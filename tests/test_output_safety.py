"""Output folders are safe (issue 13, points 1 and 6): a command refuses an output path that would destroy an
input or files it did not write, before any work, and every check is proved by hashing what was there before.

Each case of :data:`OUT_DIR_CASES` is one row of docs/bad_inputs.md (tests/test_bad_inputs_doc.py renders it).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from cmmerge.cli import main
from cmmerge.errors import ModelError
from cmmerge.models import load_config

ROOT = Path(__file__).resolve().parent.parent


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``, and ``{folder/: ""}`` of every folder."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel + "/" if p.is_dir() else rel] = "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def leftovers(root: Path) -> list[str]:
    """Temporary and backup folders of atomic writes anywhere under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """``inputs/base`` and ``inputs/a`` (tiny Llama checkpoints), ``merge.yaml``, and a folder of user files."""
    from merge.helpers import perturbed, tiny_model

    root = tmp_path_factory.mktemp("safety")
    base = tiny_model("llama", root / "inputs" / "base", layers=2)
    perturbed(base, root / "inputs" / "a", seed=1)
    return root


def _write_config(world: Path, where: Path) -> Path:
    cfg = {
        "merge_method": "task_arithmetic",
        "base_model": str(world / "inputs" / "base"),
        "models": [{"model": str(world / "inputs" / "a"), "parameters": {"weight": 0.5}}],
    }
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(yaml.safe_dump(cfg))
    return where


def _user_files(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "sub" / "data.csv").write_text("id,text\n1,hello\n")
    return folder


# (case id, what the output path is, the start of what cmmerge answers): docs/bad_inputs.md lists these
OUT_DIR_CASES = [
    ("is_input", "OUT_DIR is an input model folder", "is the input"),
    ("contains_inputs", "OUT_DIR is the folder that holds the input models", "contains the input"),
    ("inside_input", "OUT_DIR lies inside an input model folder", "lies inside the input"),
    ("holds_config", "OUT_DIR is the folder that holds the merge config", "contains the input"),
    ("cwd", "OUT_DIR is `.` (a folder of user files)", "is the current folder"),
    ("root", "OUT_DIR is `/`", "is a filesystem root"),
    ("user_folder", "OUT_DIR is a non-empty folder of user files (no manifest)", "cmmerge did not write"),
    ("user_file", "OUT_DIR is an existing file", "is a file, not a folder"),
]


def _out_for(case: str, world: Path, tmp: Path, monkeypatch) -> tuple[str, Path]:
    """The OUT_DIR argument of ``case`` and the folder whose files must come out untouched."""
    if case == "is_input":
        return str(world / "inputs" / "a"), world
    if case == "contains_inputs":
        return str(world / "inputs"), world
    if case == "inside_input":
        return str(world / "inputs" / "base" / "merged"), world
    if case == "holds_config":
        return str(tmp / "cfgdir"), tmp
    if case == "cwd":
        monkeypatch.chdir(_user_files(tmp / "project"))
        return ".", tmp
    if case == "root":
        return "/", tmp
    if case == "user_folder":
        return str(_user_files(tmp / "o")), tmp
    if case == "user_file":
        (tmp / "o.txt").write_text("important\n")
        return str(tmp / "o.txt"), tmp
    raise ValueError(case)


@pytest.mark.parametrize(("case", "what", "answer"), OUT_DIR_CASES, ids=[c[0] for c in OUT_DIR_CASES])
def test_merge_refuses_out_dir(world, tmp_path, monkeypatch, capsys, case, what, answer):
    config = _write_config(world, tmp_path / "cfgdir" / "merge.yaml")
    out, watched = _out_for(case, world, tmp_path, monkeypatch)
    before, inputs_before = snapshot(watched), snapshot(world)
    capsys.readouterr()
    assert main(["merge", str(config), out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cmmerge: error: merge output folder"), err
    assert answer in err[0], err
    assert snapshot(watched) == before  # nothing of the user's touched
    assert snapshot(world) == inputs_before  # nor of the inputs
    assert not leftovers(tmp_path) and not leftovers(world)


def test_force_replaces_a_user_folder_and_cmmerge_replaces_its_own(world, tmp_path, capsys):
    config = _write_config(world, tmp_path / "merge.yaml")
    out = _user_files(tmp_path / "o")
    assert main(["merge", str(config), str(out), "--force"]) == 0
    first = snapshot(out)
    assert "merge_manifest.json" in first and "notes.txt" not in first
    # a folder cmmerge wrote (it has merge_manifest.json) is replaced without --force, with the same bytes
    assert main(["merge", str(config), str(out)]) == 0
    assert snapshot(out) == first
    # --force never lets an input be overwritten
    inputs_before = snapshot(world)
    assert main(["merge", str(config), str(world / "inputs" / "base"), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert snapshot(world) == inputs_before
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_honour_the_umask(world, tmp_path, umask):
    config = _write_config(world, tmp_path / "merge.yaml")
    old = os.umask(umask)
    try:
        assert main(["merge", str(config), str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    out = tmp_path / "out"
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f.name


def test_other_writers_refuse_unsafe_out_dirs(world, tmp_path, capsys):
    """``cmmerge base``, ``cpt`` and ``finetune`` check their output folder before any work too."""
    base = str(world / "inputs" / "base")
    user = _user_files(tmp_path / "user")
    data = tmp_path / "data"
    data.mkdir()
    before, inputs_before = snapshot(tmp_path), snapshot(world)
    params = str(ROOT / "params.yaml")
    calls = [
        (["base", base, base], "is the input"),
        (["base", base, str(user)], "cmmerge did not write"),
        (["cpt", base, str(data), str(user), "--params", params], "cmmerge did not write"),
        (["cpt", base, str(data), str(world / "inputs"), "--params", params], "contains the input"),
        (
            ["finetune", str(world / "inputs" / "a"), str(data), str(world / "inputs" / "a" / "x"), "--params", params],
            "lies inside",
        ),
    ]
    for argv, answer in calls:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and answer in err[0], (argv, err)
    assert snapshot(tmp_path) == before and snapshot(world) == inputs_before


# --- no pickle, no escape --------------------------------------------------------------------------------


def _sharded_copy(src: Path, dst: Path, weight_map_file: str) -> Path:
    """A copy of ``src`` whose index sends every tensor to ``weight_map_file``."""
    from safetensors import safe_open

    dst.mkdir(parents=True)
    (dst / "config.json").write_bytes((src / "config.json").read_bytes())
    with safe_open(str(src / "model.safetensors"), "pt") as fh:
        names = list(fh.keys())
    index = {"metadata": {}, "weight_map": dict.fromkeys(names, weight_map_file)}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index))
    return dst


SHARD_CASES = [
    ("parent_path", "a shard index entry `../other/model.safetensors`", "points outside the model folder"),
    ("absolute_path", "a shard index entry that is an absolute path", "points outside the model folder"),
    ("escaping_symlink", "a shard that is a symlink to a file outside the model folder", "points outside"),
]


@pytest.mark.parametrize(("case", "what", "answer"), SHARD_CASES, ids=[c[0] for c in SHARD_CASES])
def test_shard_index_entries_stay_inside_the_model_folder(world, tmp_path, capsys, case, what, answer):
    other = world / "inputs" / "a"
    if case == "parent_path":
        (tmp_path / "other").symlink_to(other)
        model = _sharded_copy(other, tmp_path / "evil", "../other/model.safetensors")
    elif case == "absolute_path":
        model = _sharded_copy(other, tmp_path / "evil", str(other / "model.safetensors"))
    else:
        model = _sharded_copy(other, tmp_path / "evil", "model-00001-of-00001.safetensors")
        (model / "model-00001-of-00001.safetensors").symlink_to(other / "model.safetensors")
    cfg = {
        "merge_method": "task_arithmetic",
        "base_model": str(world / "inputs" / "base"),
        "models": [{"model": str(model), "parameters": {"weight": 0.5}}],
    }
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m.yaml"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and answer in err[0] and "weight_map" in err[0], err
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)
    # the transformers path (cpt, finetune, base) checks the same index before loading anything
    with pytest.raises(ModelError, match="points outside the model folder"):
        load_config(str(model))


@pytest.fixture(scope="module")
def pickled(tiny_models, tmp_path_factory) -> Path:
    """The tiny BERT saved as a pickle checkpoint (pytorch_model.bin, no safetensors)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    out = tmp_path_factory.mktemp("pickled") / "bert_bin"
    out.mkdir()
    for f in tiny_models["bert"].iterdir():
        if f.suffix != ".safetensors":
            shutil.copy2(f, out / f.name)
    # transformers 5 writes only safetensors: the pickle is written as older versions (and many hub repos) have it
    torch.save(load_file(str(tiny_models["bert"] / "model.safetensors")), out / "pytorch_model.bin")
    assert (out / "pytorch_model.bin").is_file() and not list(out.glob("*.safetensors"))
    return out


PICKLE_CASES = [
    ("pickle_default", "`cmmerge base` on a pickle-only checkpoint (pytorch_model.bin)", "are pickle files"),
]


def test_pickle_checkpoints_need_opting_in(pickled, tmp_path, capsys):
    out = tmp_path / "base"
    before = snapshot(pickled)
    capsys.readouterr()
    assert main(["base", str(pickled), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and PICKLE_CASES[0][2] in err[0] and "model.allow_pickle: true" in err[0], err
    assert not out.exists() and not leftovers(tmp_path)
    # opted in: read once and written as safetensors, so every later stage reads no pickle
    assert main(["base", str(pickled), str(out), "--allow-pickle"]) == 0
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    assert snapshot(pickled) == before


def test_model_section_allow_pickle_is_off_by_default():
    import dataclasses

    from cmmerge.sections import ModelParams

    default = {f.name: f.default for f in dataclasses.fields(ModelParams)}
    assert default["allow_pickle"] is False
