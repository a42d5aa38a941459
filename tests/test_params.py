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
