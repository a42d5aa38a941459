"""Bad inputs give one clear error of a cmmerge.errors type, nothing is written, and the command line
prints one line ``cmmerge: error: …`` with exit status 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from cmmerge.cli import main
from cmmerge.errors import CmmergeError, ConfigError, MergeError
from cmmerge.merge import MergeConfig, run_merge

from .helpers import write_variant

ROOT = Path(__file__).resolve().parents[2]


def _config(base: Path, *models: Path, method: str = "ties", params=None, model_params=None) -> dict:
    return {
        "merge_method": method,
        "base_model": str(base),
        "models": [{"model": str(m), "parameters": model_params or {}} for m in models],
        "parameters": {"density": 0.5} if params is None else params,
    }


def _fails(cfg: dict, out: Path, error: type, match: str, capsys=None) -> None:
    """The config fails with ``error`` through the API and the command line; nothing is written."""
    with pytest.raises(error, match=match):
        run_merge(MergeConfig.from_dict(cfg), out)
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.tmp-*"))
    if capsys is not None:
        path = out.parent / f"{out.name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        capsys.readouterr()
        assert main(["merge", str(path), str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("cmmerge: error: "), err
        assert not out.exists()


def test_mismatched_shapes_are_listed(family, tmp_path, capsys):
    f = family["llama"]

    def shrink(name: str, t: torch.Tensor):
        return t[:, :8].contiguous() if name.endswith(("q_proj.weight", "up_proj.weight")) else t

    bad = write_variant(f["a"], tmp_path / "bad", shrink)
    _fails(
        _config(f["base"], f["b"], bad),
        tmp_path / "out",
        MergeError,
        r"shapes differ from the base's in 12 place\(s\): model.layers.0.mlp.up_proj.weight \[32, 16\] vs \[32, 8\]"
        r".*model.layers.0.self_attn.q_proj.weight \[16, 16\] vs \[16, 8\] in .* and 4 more",
        capsys,
    )


def test_missing_tensor(family, tmp_path, capsys):
    f = family["xlmr"]
    bad = write_variant(f["a"], tmp_path / "bad", lambda n, t: None if "layer.3.output.dense.weight" in n else t)
    _fails(
        _config(f["base"], bad),
        tmp_path / "out",
        MergeError,
        r"1 tensor\(s\) of the base are missing from .*roberta.encoder.layer.3.output.dense.weight",
        capsys,
    )


def test_different_architectures(family, tmp_path, capsys):
    _fails(
        _config(family["llama"]["base"], family["llama"]["a"], family["bert"]["a"]),
        tmp_path / "out",
        MergeError,
        "different architectures: the base .* is 'llama' but model .* is 'bert'",
        capsys,
    )


def test_nan_weights_in_an_input(family, tmp_path, capsys):
    f = family["bert"]

    def poison(name: str, t: torch.Tensor):
        if name.endswith("layer.1.attention.self.key.weight"):
            t[0, 0] = float("nan")
        return t

    bad = write_variant(f["a"], tmp_path / "bad", poison)
    match = r"layer.1.attention.self.key.weight has 1 NaN"
    _fails(_config(f["base"], bad), tmp_path / "out", MergeError, match, capsys)


def test_inf_in_the_output(family, tmp_path):
    f = family["llama"]
    cfg = _config(f["base"], f["a"], method="task_arithmetic", params={"lambda": 1e9}) | {"out_dtype": "float16"}
    _fails(cfg, tmp_path / "out", MergeError, "merged tensor .* NaN/Inf")


def test_missing_model(family, tmp_path, capsys):
    cfg = _config(family["llama"]["base"], tmp_path / "nowhere")
    _fails(cfg, tmp_path / "out", CmmergeError, r"models\[0\].model: .*nowhere", capsys)
    cfg = _config(tmp_path / "nobase", family["llama"]["a"])
    _fails(cfg, tmp_path / "out", CmmergeError, r"base_model: .*nobase")


@pytest.mark.parametrize(
    ("params", "model_params", "match"),
    [
        ({"lambda": "0.5", "density": 0.5}, {}, r"parameters.lambda must be a number, got '0.5' \(str\)"),
        ({"density": 0}, {}, r"parameters.density must be in \(0, 1\], got 0"),
        ({"density": 1.5}, {}, r"parameters.density must be in \(0, 1\], got 1.5"),
        ({"density": 0.5}, {"density": -0.1}, r"models\[0\].parameters.density must be in \(0, 1\]"),
        ({}, {}, r"models\[0\].parameters.density is required"),
        ({"density": 0.5, "lamda": 1}, {}, "unknown key.*lamda"),
        ({"density": 0.5}, {"weight": "heavy"}, r"models\[0\].parameters.weight must be a number"),
    ],
)
def test_bad_parameters_are_config_errors(family, tmp_path, params, model_params, match):
    f = family["llama"]
    cfg = _config(f["base"], f["a"], params=params, model_params=model_params)
    with pytest.raises(ConfigError, match=match):
        MergeConfig.from_dict(cfg)


def test_unknown_method_and_wrong_model_count(family):
    f = family["llama"]
    with pytest.raises(ConfigError, match="unknown merge method 'tie'; expected one of adamergex"):
        MergeConfig.from_dict(_config(f["base"], f["a"], method="tie"))
    with pytest.raises(ConfigError, match="revert takes at most 1 model"):
        MergeConfig.from_dict(_config(f["base"], f["a"], f["b"], method="revert", params={}))
    with pytest.raises(ConfigError, match="base_model is required by task_arithmetic"):
        MergeConfig.from_dict({"merge_method": "task_arithmetic", "models": [{"model": str(f["a"])}]})


def test_command_line_subprocess_one_line_exit_2(family, tmp_path):
    """The real command: a λ given as text is one line on stderr, exit status 2, no traceback."""
    cfg = _config(family["llama"]["base"], family["llama"]["a"], params={"density": 0.5, "lambda": "big"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "cmmerge", "merge", str(path), str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"cmmerge: error: {path}.parameters.lambda must be a number, got 'big' (str)"
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
