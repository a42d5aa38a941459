"""Typed params: wrong types, unknown keys and missing keys name the dotted key and what was expected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from cmmerge.errors import ConfigError
from cmmerge.params import from_dict, load_section


@dataclass
class Inner:
    rate: float = 0.1


@dataclass
class Section:
    lam: float
    mode: Literal["a", "b"] = "a"
    seeds: list[int] = field(default_factory=lambda: [1])
    inner: Inner = field(default_factory=Inner)
    path: str | None = None


def test_valid_section_is_typed():
    s = from_dict(Section, {"lam": 1, "seeds": [1, 2], "inner": {"rate": 2}}, "params.yaml: merge")
    assert s.lam == 1.0 and isinstance(s.lam, float)
    assert s.seeds == [1, 2] and s.inner.rate == 2.0 and s.path is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lam": "abc"}, "params.yaml: merge.lam must be a number, got 'abc' (str)"),
        ({"lam": True}, "params.yaml: merge.lam must be a number, got True (bool)"),
        ({"lam": 1, "mode": "c"}, "params.yaml: merge.mode must be one of 'a', 'b', got 'c' (str)"),
        ({"lam": 1, "seeds": [1, "x"]}, "params.yaml: merge.seeds[1] must be an integer, got 'x' (str)"),
        ({"lam": 1, "inner": {"rate": "fast"}}, "params.yaml: merge.inner.rate must be a number"),
        ({"lam": 1, "lamda": 2}, "params.yaml: merge: unknown key(s) lamda"),
        ({}, "params.yaml: merge.lam is required (a number)"),
        ({"lam": 1, "path": 3}, "params.yaml: merge.path must be a string, got 3 (int)"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as exc:
        from_dict(Section, data, "params.yaml: merge")
    assert str(exc.value).startswith(message)


def test_missing_section_and_file(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_section("merge", Section, tmp_path / "nope.yaml")
    (tmp_path / "p.yaml").write_text("other: {}\n")
    with pytest.raises(ConfigError, match="section 'merge' is missing"):
        load_section("merge", Section, tmp_path / "p.yaml")
    (tmp_path / "bad.yaml").write_text("merge: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_section("merge", Section, tmp_path / "bad.yaml")


def test_repository_params_load(repo_root):
    """Every section of the shipped params.yaml validates against its stage's dataclass."""
    from cmmerge.data.prepare import PrepareParams
    from cmmerge.eval.evaluate import EvaluateParams
    from cmmerge.eval.report import ReportParams
    from cmmerge.train.cpt import CptParams
    from cmmerge.train.finetune import FinetuneParams

    path = repo_root / "params.yaml"
    for section, cls in [
        ("prepare", PrepareParams),
        ("cpt", CptParams),
        ("finetune", FinetuneParams),
        ("evaluate", EvaluateParams),
        ("report", ReportParams),
    ]:
        load_section(section, cls, path)


def test_params_read_as_dvc_reads_them():
    """YAML 1.2 as DVC's ruamel.yaml reads it, not PyYAML's 1.1: `yes` is a string, `1e-4` a float, `012` 12."""
    from dvc.utils.serialize import loads_yaml

    from cmmerge import yaml12

    text = "a: yes\nb: on\nc: 1e-4\nd: 1:20\ne: 012\nf: 0x1f\ng: 1_000\nh: .inf\ni: true\nj: ~\nk: 2.5\nl: -3\n"
    assert yaml12.load(text) == dict(loads_yaml(text))
    assert yaml12.load(text)["a"] == "yes" and yaml12.load(text)["c"] == 1e-4 and yaml12.load(text)["e"] == 12
    tricky = {"a": "yes", "b": "1e-4", "c": "1:20", "d": "012", "e": "on", "f": 0.0001, "g": True, "h": None}
    for read in (yaml12.load, loads_yaml, __import__("yaml").safe_load):  # cmmerge, DVC and plain PyYAML
        assert dict(read(yaml12.dump(tricky))) == tricky


def test_a_set_param_keeps_the_label_maps_strings(tmp_path, repo_root, monkeypatch):
    """`dvc exp run -S` rewrites params.yaml through DVC's YAML 1.2 writer, which drops the quotes of "yes"; the
    Bohra config's English label map must still read as strings (PyYAML alone read them as True and False)."""
    from dvc.utils.hydra import apply_overrides

    from cmmerge.overlay import apply
    from cmmerge.params import load_yaml

    monkeypatch.chdir(repo_root)
    params = tmp_path / "params.yaml"
    apply("configs/real/bohra_hinglish_hate.yaml", params)
    apply_overrides(params, ["merges.ties_cpt.parameters.density=0.1"])  # what `dvc exp run -S` runs
    assert "hate: yes" in params.read_text()  # DVC's writer dropped the quotes
    read = load_yaml(params)
    assert read["prepare"]["english"]["label_map"] == {"hate": "yes", "not-hate": "no"}
    assert read["merges"]["ties_cpt"]["parameters"]["density"] == 0.1
