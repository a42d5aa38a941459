"""A merge config resolves to a frozen object (method, typed parameters, its name in messages) instead of
carrying hidden state; methods bring their own checks against the checkpoints, which the engine runs without
knowing any method's name; block numbers are resolved by one function."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
import yaml

from cmmerge.cli import main
from cmmerge.errors import ConfigError, MergeError, ModelError
from cmmerge.merge import MergeConfig, ResolvedMerge, adapters, engine, get_method, registry, run_merge
from cmmerge.merge.layers import BlockLayout, resolve_block
from cmmerge.merge.methods import RevertParams, SparseModelParams, TiesParams, reverted_blocks


def _data(f, method: str = "ties", params: dict | None = None, models: list | None = None) -> dict:
    return {
        "merge_method": method,
        "base_model": str(f["base"]),
        "models": models or [{"model": str(f["a"]), "parameters": {"weight": 0.5}}, {"model": str(f["b"])}],
        "parameters": {"density": 0.5} if params is None else params,
    }


def test_resolve_returns_a_frozen_typed_merge_and_leaves_the_config_plain(family):
    cfg = MergeConfig.from_dict(_data(family["bert"]), where="params.yaml: merges.ties")
    merge = cfg.resolve("params.yaml: merges.ties")
    assert isinstance(merge, ResolvedMerge)
    assert merge.config is cfg and merge.method is get_method("ties") and merge.where == "params.yaml: merges.ties"
    assert merge.params == TiesParams(density=0.5)
    assert merge.model_params == (SparseModelParams(weight=0.5), SparseModelParams())
    with pytest.raises(dataclasses.FrozenInstanceError):
        merge.where = "elsewhere"  # type: ignore[misc]
    # the config holds what was written and nothing else: no attribute set behind the dataclass's back
    assert set(vars(cfg)) == {f.name for f in dataclasses.fields(cfg)}
    assert cfg.resolve() == cfg.resolve()  # resolving is a pure function of the config


def test_a_config_edited_after_it_was_built_is_checked_again(family, tmp_path):
    cfg = MergeConfig.from_dict(_data(family["bert"], method="task_arithmetic", params={"lambda": 0.5}))
    cfg.parameters["lambda"] = "half"
    with pytest.raises(ConfigError, match=r"^merge config.parameters.lambda must be a number, got 'half'"):
        run_merge(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("method", "params", "models", "error", "message"),
    [
        ("revert", {"blocks": [9]}, None, MergeError, r"merges.x.parameters: block number\(s\) \[9\] outside"),
        ("revert", {"block_range": [-1, 0]}, None, MergeError, r"merges.x.parameters.block_range: first block 5"),
        ("task_arithmetic", {}, [{"model": "/no/such/model"}], ModelError, r"merges.x.models\[0\].model: "),
    ],
)
def test_a_resolved_merge_names_its_config_in_errors_about_the_checkpoints(
    family, tmp_path, method, params, models, error, message
):
    f = family["bert"]
    data = _data(f, method, params, models or [{"model": str(f["a"])}])
    merge = MergeConfig.from_dict(data, where="params.yaml: merges.x").resolve("params.yaml: merges.x")
    with pytest.raises(error, match="^params.yaml: " + message):
        run_merge(merge, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_errors_about_checkpoints_name_the_config_file(family, tmp_path, capsys):
    path = tmp_path / "rev.yaml"
    path.write_text(
        yaml.safe_dump(_data(family["bert"], "revert", {"blocks": [-7]}, [{"model": str(family["bert"]["a"])}]))
    )
    capsys.readouterr()
    assert main(["merge", str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cmmerge: error: {path}.parameters: block number(s) [-7] outside the model's 6 blocks (0 … 5)"]


def test_the_engine_runs_a_methods_own_plan_check(family, tmp_path, monkeypatch):
    """A method registered with ``check_plan`` gets it called with the plan before anything is written."""
    seen = []

    def refuse(plan, params, where):
        seen.append((plan.layout.num_blocks, params.lam, where))
        raise MergeError(f"{where}: refused by the method's own check")

    method = dataclasses.replace(get_method("task_arithmetic"), check_plan=refuse)
    monkeypatch.setitem(registry._REGISTRY, "task_arithmetic", method)
    cfg = MergeConfig.from_dict(_data(family["llama"], "task_arithmetic", {"lambda": 0.3}))
    with pytest.raises(MergeError, match=r"^merge config: refused by the method's own check$"):
        run_merge(cfg, tmp_path / "out")
    assert seen == [(6, 0.3, "merge config")]
    assert not (tmp_path / "out").exists()


def test_plan_checks_are_declared_by_the_methods_not_dispatched_by_name():
    assert get_method("layer_swap").check_plan is not None and get_method("revert").check_plan is not None
    assert get_method("ties").check_plan is None
    for module in (engine, adapters):
        assert not re.search(r"\bname\s*==", inspect.getsource(module)), module.__name__


def test_block_numbers_resolve_python_style_and_out_of_range_is_none():
    assert [resolve_block(b, 6) for b in (0, 5, -1, -6)] == [0, 5, 5, 0]
    assert [resolve_block(b, 6) for b in (6, -7, 100)] == [None, None, None]
    assert resolve_block(0, 0) is None and resolve_block(-1, 0) is None
    layout = BlockLayout("model.layers.", 6)
    assert layout.resolve(-2) == 4 and layout.resolve(6) is None
    assert reverted_blocks(RevertParams(blocks=[0, -1], block_range=[-3, 3]), 6) == {0, 3, 5}
